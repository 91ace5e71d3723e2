"""Group 8, limits: the limits every production server has, set by io-models' command
line. A server at its --max-connections turns the extra client away at once, keeps
serving the ones it has, says so once in its log, and serves again once one leaves.
--idle-timeout closes silent connections and only those; --drain-timeout bounds a stop
even when a client is stuck; and past descriptor 1,024, where select() stops, a server
serves or turns away each client but never falls over."""

from __future__ import annotations

import selectors
import signal
import socket
import time
from contextlib import ExitStack

from select_mux import FD_SETSIZE
from tests.conformance.cases import case
from tests.support import (
    IO_TIMEOUT,
    PatternStream,
    ServerSpec,
    StartServer,
    connect,
    connect_served,
    echo,
    echo_on_each,
    open_clients,
    push_until_stalled,
    raised_fd_limit,
    served,
    wait_until,
)

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
