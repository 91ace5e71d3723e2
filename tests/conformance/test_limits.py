"""Group 8, limits: the limits every production server has, set by io-models' command
line. A server at its --max-connections turns the extra client away at once, keeps
serving the ones it has, says so once in its log, and serves again once one leaves.
--idle-timeout closes silent connections and only those; --drain-timeout bounds a stop
even when a client is stuck; and past descriptor 1,024, where select() stops, a server
serves or turns away each client but never falls over."""

from __future__ import annotations

import errno
import selectors
import signal
import socket
import sys
import time
from contextlib import ExitStack

import pytest

from select_mux import FD_SETSIZE
from tests.clients import IO_TIMEOUT, connect, connect_served, echo, echo_on_each, open_clients, served
from tests.conformance.cases import case
from tests.servers import RecordProperty, StartServer, frozen, raised_fd_limit
from tests.streams import PatternStream, push_until_stalled, read_back_stream
from toolkit.measure import kernel_queued
from toolkit.process import ServerSpec, wait_until

LIMIT = 3
EXTRA_ATTEMPTS = 5


def turned_away(sock: socket.socket) -> bool:
    """Does the server end this connection at once, without serving it?"""
    sock.settimeout(IO_TIMEOUT)
    try:
        sock.sendall(b"let me in")
        return sock.recv(16) == b""  # the server's FIN
    except ConnectionError:  # or its RST, when the close meets the bytes just sent
        return True
    except TimeoutError:
        return False


@case("8.1", "At --max-connections, a client too many is closed at once; the others are served", timeout=60)
def test_max_connections(start_server: StartServer) -> None:
    server = start_server("--max-connections", str(LIMIT))
    with ExitStack() as stack:
        clients = [stack.enter_context(connect_served(server.address, number)) for number in range(LIMIT)]
        for attempt in range(EXTRA_ATTEMPTS):
            with connect(server.address) as extra:
                assert turned_away(extra), (
                    f"client {LIMIT + attempt + 1} was served past --max-connections {LIMIT}"
                )
        for number, sock in enumerate(clients):
            message = f"still served {number}".encode()
            assert echo(sock, message) == message
        # One leaves: its place is free once the server has seen it go.
        clients.pop().close()
        assert wait_until(lambda: served(server.address), timeout=IO_TIMEOUT), (
            "no place freed after a client left"
        )
    refusals = [line for line in server.stderr_text().splitlines() if "max-connections" in line]
    assert len(refusals) == 1, (
        f"{EXTRA_ATTEMPTS} refusals in one spell must log one line, not {len(refusals)}"
    )


IDLE_TIMEOUT = 1.0
CHATTER_INTERVAL = 0.25  # well inside the idle timeout: a chatty client is never idle
WATCH = 4 * IDLE_TIMEOUT


def ended(sock: socket.socket) -> bool:
    """Has the server closed this connection (FIN or RST)? Only for a readable socket."""
    try:
        return sock.recv(16) == b""
    except ConnectionError:
        return True


@case("8.2", "--idle-timeout closes a connection silent both ways for that long, and only such", timeout=60)
def test_idle_timeout(start_server: StartServer) -> None:
    server = start_server("--idle-timeout", str(IDLE_TIMEOUT))
    with connect(server.address) as silent, connect(server.address) as chatty:
        assert echo(chatty, b"hello") == b"hello"
        assert echo(silent, b"hello") == b"hello"
        last_traffic = time.monotonic()
        closed_after = None
        with selectors.DefaultSelector() as selector:
            selector.register(silent, selectors.EVENT_READ)
            # The chatty client echoes every quarter of the timeout while we watch the
            # silent one for four timeouts: only the silent one may be closed.
            while time.monotonic() < last_traffic + WATCH:
                if closed_after is None and selector.select(CHATTER_INTERVAL):
                    closed_after = time.monotonic() - last_traffic
                    assert ended(silent), "the silent client got bytes it never sent"
                    selector.unregister(silent)
                elif closed_after is not None:
                    time.sleep(CHATTER_INTERVAL)
                assert echo(chatty, b"still here") == b"still here", "a chatty client was closed"
    assert closed_after is not None, f"a client silent for {WATCH}s was not closed (--idle-timeout 1)"
    assert closed_after >= 0.9 * IDLE_TIMEOUT, f"closed after {closed_after:.2f}s of silence, before 1s"
    assert closed_after < 3 * IDLE_TIMEOUT, f"closed only after {closed_after:.2f}s of silence"


@case("8.3", "A stop with a stuck client (never reads, output owed) exits 0 within drain + 1s", timeout=60)
def test_stop_with_a_stuck_client(start_server: StartServer) -> None:
    server = start_server("--drain-timeout", "1")
    with connect(server.address, rcvbuf=4096) as stuck:
        # Fill every buffer between us: the server owes this client bytes it cannot send.
        pushed = push_until_stalled(stuck, PatternStream(seed=83), limit=64 << 20, stall=0.5)
        assert pushed < 64 << 20, "the server kept reading from a client that does not read"
        started = time.monotonic()
        server.send_signal(signal.SIGTERM)
        status = server.wait(1 + 1 + 1)  # the bound, plus a second of grace for a busy machine
        waited = time.monotonic() - started
    assert status == 0, server.stderr_text()
    assert waited < 1 + 1, f"exited {waited:.2f}s after SIGTERM with --drain-timeout 1"


PAST_FD_SETSIZE = FD_SETSIZE + 100  # select()'s limit, defined once beside select_mux's declaration


@case(
    "8.4", "Past descriptor 1,024 every client is served or turned away; none crashes the server", timeout=120
)
def test_past_fd_setsize(server_spec: ServerSpec, start_server: StartServer) -> None:
    with raised_fd_limit(2 * PAST_FD_SETSIZE):  # the server, started inside, inherits it
        server = start_server("--max-connections", str(2 * PAST_FD_SETSIZE))
        clients = open_clients(server.address, PAST_FD_SETSIZE)
        try:
            echoed, turned_away = echo_on_each(clients)
            assert server.running(), f"the server died: {server.stderr_text()[-2000:]}"
            assert echoed >= FD_SETSIZE - 16, f"only {echoed} of {PAST_FD_SETSIZE} clients were served"
            if server_spec.connection_cap is None:  # only a declared cap may turn clients away
                assert turned_away == 0, f"{turned_away} of {PAST_FD_SETSIZE} clients were turned away"
        finally:
            for sock in clients:
                sock.close()
        # Their places are free again: a new client is served once the server saw them go.
        assert wait_until(lambda: served(server.address), timeout=IO_TIMEOUT), "no client served afterwards"


BACKLOG = 3
CONNECTS = 20
# A connect the full queue dropped is retried after a second (the SYN's first
# retransmission): the ones that complete before that found room in the queue.
HANDSHAKE_WINDOW = 0.5


def handshakes_completed(address: tuple[str, int], count: int, window: float) -> list[socket.socket]:
    """Start count connects at once; return the sockets whose handshake completed
    within window, closing the rest."""
    pending = []
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        assert sock.connect_ex(address) == errno.EINPROGRESS
        pending.append(sock)
    completed = []
    deadline = time.monotonic() + window
    with selectors.DefaultSelector() as selector:
        for sock in pending:
            selector.register(sock, selectors.EVENT_WRITE, sock)
        while selector.get_map() and (left := deadline - time.monotonic()) > 0:
            for key, _ in selector.select(left):
                selector.unregister(key.data)
                if key.data.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                    completed.append(key.data)
    for sock in pending:
        if sock not in completed:
            sock.close()
    return completed


@case("8.7", "--backlog has an effect: a stopped server completes about backlog + 1 handshakes", timeout=30)
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="not applicable: the count is Linux's")
def test_backlog(start_server: StartServer, record_property: RecordProperty) -> None:
    server = start_server("--backlog", str(BACKLOG))
    with frozen(server):  # nothing is accepted: the kernel's queue alone answers
        completed = handshakes_completed(server.address, CONNECTS, HANDSHAKE_WINDOW)
    for sock in completed:
        sock.close()
    record_property("measured", f"--backlog {BACKLOG}: {len(completed)} of {CONNECTS} handshakes completed")
    # Linux queues backlog + 1 (its "full" is "more than backlog"); a server that listens
    # with a backlog of its own choosing lets in all twenty.
    assert BACKLOG <= len(completed) <= BACKLOG + 2, (
        f"{len(completed)} of {CONNECTS} connects completed against a stopped server with --backlog {BACKLOG}"
    )
    assert wait_until(lambda: served(server.address), timeout=IO_TIMEOUT), "not served once resumed"


SMALL_BUFFER, LARGE_BUFFER = 4 << 10, 8 << 20
BUFFER_STALL = 1.0
READ_PAST_CAP = 256 << 10  # asyncio's transport reads this much before it can pause


@case(
    "8.8",
    "--buffer-size has an effect: a stalled client is owed MiBs more at 8 MiB than at 4 KiB",
    timeout=90,
)
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="not applicable: reads /proc/net/tcp")
def test_buffer_size(start_server: StartServer, record_property: RecordProperty) -> None:
    held = {}
    for size in (SMALL_BUFFER, LARGE_BUFFER):
        server = start_server("--buffer-size", str(size))
        stream = PatternStream(seed=88)
        with connect(server.address, rcvbuf=4096, timeout=30.0) as sock:
            assert echo(sock, b"hello") == b"hello"
            pushed = push_until_stalled(sock, stream, limit=64 << 20, stall=BUFFER_STALL)
            # The kernel's queues on the way autotune from run to run; taken out, what
            # is left is what the server itself holds: at most its cap.
            held[size] = pushed - kernel_queued(sock)
            sock.shutdown(socket.SHUT_WR)
            read_back_stream(sock, stream, pushed)
        server.close()
    record_property(
        "measured",
        f"held by the server once stalled: {held[SMALL_BUFFER] >> 10} KiB at --buffer-size 4096, "
        f"{held[LARGE_BUFFER] >> 10} KiB at 8 MiB",
    )
    for size, amount in held.items():
        assert amount <= size + READ_PAST_CAP, f"the server held {amount >> 10} KiB at --buffer-size {size}"
    # And the cap is used: a server that stops reading at a size of its own holds the same.
    difference = held[LARGE_BUFFER] - held[SMALL_BUFFER]
    assert difference >= LARGE_BUFFER // 8, (
        f"the server held {difference >> 10} KiB more at --buffer-size 8 MiB than at 4 KiB"
    )


@case("8.9", "--log-level has an effect: DEBUG logs each connection, WARNING stays silent", timeout=30)
def test_log_level(start_server: StartServer) -> None:
    logs, ports = {}, {}
    for level in ("DEBUG", "WARNING"):
        server = start_server("--log-level", level)
        with connect(server.address) as sock:
            assert echo(sock, b"hello") == b"hello"
            ports[level] = str(sock.getsockname()[1])
        server.send_signal(signal.SIGTERM)  # a stop logs at INFO: "no longer accepting"
        assert server.wait(IO_TIMEOUT) == 0, server.stderr_text()
        logs[level] = server.stderr_text()
    # At DEBUG a connection is logged with its address, which names the client's port.
    assert ports["DEBUG"] in logs["DEBUG"], f"--log-level DEBUG logged no line for a client:\n{logs['DEBUG']}"
    assert logs["WARNING"] == "", f"--log-level WARNING logged below WARNING:\n{logs['WARNING']}"
