"""Group 8, limits: the limits every production server has, set by io-models' command
line. A server at its --max-connections turns the extra client away at once, keeps
serving the ones it has, says so once in its log, and serves again once one leaves."""

from __future__ import annotations

import socket
from contextlib import ExitStack

from tests.conformance.cases import case
from tests.support import IO_TIMEOUT, StartServer, connect, connect_served, echo, wait_until

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


def served(address: tuple[str, int]) -> bool:
    """Is a new client served now? A refusal is an answer too: False, not an error."""
    with connect(address) as sock:
        try:
            return echo(sock, b"served?") == b"served?"
        except (ConnectionError, AssertionError):  # turned away: EOF, or a reset
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
