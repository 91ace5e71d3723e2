"""Group 8, limits: the limits every production server has, set by io-models' command
line. A server at its --max-connections turns the extra client away at once, keeps
serving the ones it has, says so once in its log, and serves again once one leaves.
--idle-timeout closes silent connections and only those; --drain-timeout bounds a stop
even when a client is stuck; and past descriptor 1,024, where select() stops, a server
serves or turns away each client but never falls over."""

from __future__ import annotations

import contextlib
import errno
import re
import selectors
import signal
import socket
import sys
import threading
import time
from contextlib import ExitStack

import pytest

from select_mux import FD_SETSIZE
from tests.clients import (
    IO_TIMEOUT,
    assert_echoed,
    connect,
    connect_served,
    echo,
    echo_on_each,
    open_clients,
    served,
)
from tests.conformance.cases import case
from tests.servers import RecordProperty, StartServer, frozen, raised_fd_limit
from tests.streams import PatternStream, push_until_stalled, read_back_stream
from toolkit.measure import kernel_queued
from toolkit.process import ServerProcess, ServerSpec, wait_until

LIMIT = 3
EXTRA_ATTEMPTS = 12  # enough that a server counting per worker cannot pass by luck


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
    assert refusals, "the refusals were not logged"
    assert len(refusals) <= 2, f"{EXTRA_ATTEMPTS} refusals in a moment logged {len(refusals)} lines"


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
BUFFER_STALL = 0.5  # what the server holds is measured exactly: no need to wait long
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


# Steady and slow: at 1.4 MB/s a third of a loopback send buffer (autotuned to 4 MiB)
# takes a second to drain, and a loop hears of progress only at a third free. 6 MB at
# that rate is 4 s of reading, and the server's last recv() comes within the first.
SLOW_READ_RATE = 1_400_000  # bytes a second
SLOW_READ_TOTAL = 6_000_000
SLOW_READ_RCVBUF = 64 << 10
PACE = 0.02  # seconds between the reader's looks


def send_paced_stream(sock: socket.socket, stream: PatternStream, total: int) -> None:
    """Send total bytes of stream, a chunk at a time (each within the socket's timeout)."""
    with contextlib.suppress(OSError):  # the server closed us: the reader says so
        for offset in range(0, total, 1 << 16):
            sock.sendall(stream.read(offset, min(1 << 16, total - offset)))


@case("8.5", "A client reading its echo slowly but steadily is never idle, however long it takes", timeout=60)
def test_slow_steady_reader_is_not_idle(start_server: StartServer) -> None:
    # "Idle" means no bytes moved, as the client sees it. This one sends its stream at
    # once and reads it back at SLOW_READ_RATE: for most of the time the server has
    # nothing to read and, for a second or more, no room to send into (the kernel's
    # buffers are full of bytes the client reads bit by bit), yet bytes move all along.
    server = start_server("--idle-timeout", str(IDLE_TIMEOUT))
    stream = PatternStream(seed=85)
    with connect(server.address, rcvbuf=SLOW_READ_RCVBUF) as sock:
        sender = threading.Thread(target=send_paced_stream, args=(sock, stream, SLOW_READ_TOTAL))
        sender.start()
        received = 0
        started = time.monotonic()
        try:
            while received < SLOW_READ_TOTAL:
                allowed = int((time.monotonic() - started) * SLOW_READ_RATE) - received
                if allowed <= 0:
                    time.sleep(PACE)  # pacing the client is the point: a steady, slow reader
                    continue
                try:
                    chunk = sock.recv(min(allowed, 1 << 16))
                except ConnectionError:
                    chunk = b""
                if not chunk:
                    pytest.fail(
                        f"closed after {received} of {SLOW_READ_TOTAL} bytes, "
                        f"{time.monotonic() - started:.1f}s into a steady read at "
                        f"{SLOW_READ_RATE >> 10} KiB/s: taken for idle (--idle-timeout {IDLE_TIMEOUT:g})"
                    )
                assert_echoed(chunk, stream.read(received, len(chunk)), start=received)
                received += len(chunk)
            # All read: the client is still served, though it sent nothing for seconds.
            try:
                assert echo(sock, b"still here") == b"still here"
            except (ConnectionError, TimeoutError, AssertionError) as error:  # a reset, silence, or EOF
                pytest.fail(f"closed while its echo was still being read ({error}): taken for idle")
        finally:
            with contextlib.suppress(OSError):  # already reset, when the server gave up on us
                sock.shutdown(socket.SHUT_RDWR)  # ends the sender, if it still waits
            sender.join()


# Refusals are logged at a bounded rate, by time: at most a line a second (and one more
# for the window's edges), each with how many clients it stands for.
LOG_LINES_PER_SECOND = 1
CHURN_TIME = 2.5


def refusal_lines(server: ServerProcess, words: tuple[str, ...]) -> list[str]:
    return [line for line in server.stderr_text().splitlines() if any(word in line for word in words)]


def assert_logged_at_a_bounded_rate(lines: list[str], refused: int, elapsed: float) -> None:
    allowed = 2 + int(elapsed * LOG_LINES_PER_SECOND)
    assert lines, f"{refused} refused clients were never logged"
    assert len(lines) <= allowed, (
        f"{refused} clients turned away in {elapsed:.1f}s logged {len(lines)} lines, more than {allowed}:"
        f"\n{lines[0]}\n{lines[-1]}"
    )
    # "57 clients", "turned 57 new client(s) away": a number shortly before "client".
    counts = [int(found[1]) for line in lines if (found := re.search(r"(\d+)\D{0,20}client", line))]
    if refused > len(lines):  # some line stands for several
        assert max(counts, default=0) > 1, f"no line says how many were refused: {lines[-1]}"


@case("8.6", "Refused clients are logged at a bounded rate, with a count, even as clients churn", timeout=90)
@pytest.mark.parametrize("cause", ["churn-at-max-connections", "past-fd-setsize"])
def test_refusals_are_logged_at_a_bounded_rate(
    server_spec: ServerSpec, start_server: StartServer, cause: str
) -> None:
    if cause == "past-fd-setsize":
        cap = server_spec.connection_cap
        if cap is None or cap >= PAST_FD_SETSIZE:
            pytest.skip("not applicable: serves past descriptor 1,024, so refuses no one there")
        with raised_fd_limit(2 * PAST_FD_SETSIZE):  # the server, started inside, inherits it
            server = start_server("--max-connections", str(2 * PAST_FD_SETSIZE))
            started = time.monotonic()
            clients = open_clients(server.address, PAST_FD_SETSIZE)
            try:
                _, refused = echo_on_each(clients)
            finally:
                for sock in clients:
                    sock.close()
            assert refused, "no client was refused past descriptor 1,024: nothing to log"
            # The count may wait for the next line: new clients, until a second has passed.
            words = ("1024", "descriptor", "FD_SETSIZE")
            wait_until(
                lambda: served(server.address) and len(refusal_lines(server, words)) > 1, timeout=IO_TIMEOUT
            )
            elapsed = time.monotonic() - started
            assert_logged_at_a_bounded_rate(refusal_lines(server, words), refused, elapsed)
        return
    # One place, clients churning for it: each time the one served leaves, a newcomer
    # takes its place and the next is refused. "One line per spell at the limit" was one
    # line per refusal here, as every admitted client ended the spell.
    server = start_server("--max-connections", "1")
    held = connect_served(server.address, 0)
    refused = 0
    started = time.monotonic()
    try:
        while time.monotonic() - started < CHURN_TIME:
            held.close()
            newcomer = None
            while newcomer is None:  # until the server has seen the last one leave
                sock = connect(server.address)
                if turned_away(sock):
                    refused += 1
                    sock.close()
                else:
                    newcomer = sock
            held = newcomer
            with connect(server.address) as extra:
                assert turned_away(extra), "a second client was served past --max-connections 1"
                refused += 1
    finally:
        held.close()
    elapsed = time.monotonic() - started
    assert_logged_at_a_bounded_rate(refusal_lines(server, ("max-connections",)), refused, elapsed)
