"""Group 4, close behaviour: a half-close gets everything owed and then a FIN, and a
client that resets or stops reading ends only its own connection."""

from __future__ import annotations

import random
import socket
import sys
import time

import pytest

from tests.clients import assert_echoed, connect, echo, recv_until_eof, reset
from tests.conformance.cases import case
from tests.servers import Server
from tests.streams import PatternStream, push_until_stalled, read_back_stream
from toolkit.measure import server_holds_connection
from toolkit.process import wait_until

# A server that dies of a client's reset may take a moment to finish dying.
WATCH = 1.0


def assert_still_serving(server: Server, bystander: socket.socket) -> None:
    """The bystander keeps being served for a while, and a newcomer is served too."""
    watch_until = time.monotonic() + WATCH
    while time.monotonic() < watch_until:
        assert echo(bystander, b"still here") == b"still here"
        time.sleep(0.01)
    with connect(server.address) as newcomer:
        assert echo(newcomer, b"newcomer") == b"newcomer"
    bystander.shutdown(socket.SHUT_WR)
    assert recv_until_eof(bystander) == b""


@case("4.1", "After a half-close, everything owed arrives, then FIN (not RST)", timeout=30)
def test_half_close_after_sending_gets_everything_then_fin(server: Server) -> None:
    payload = random.Random(1).randbytes(32 << 10)
    with connect(server.address) as sock:
        # Send and half-close before reading anything: the server sees the data and
        # the EOF together, and must still send every byte before its FIN.
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        assert_echoed(recv_until_eof(sock), payload)  # a RST would raise ConnectionResetError
        assert sock.recv(1) == b"", "after the FIN the connection stays cleanly closed"


@case("4.2", "A half-close with nothing sent gets a prompt EOF", timeout=30)
def test_half_close_with_nothing_sent_gets_prompt_eof(server: Server) -> None:
    with connect(server.address, timeout=2.0) as sock:
        sock.shutdown(socket.SHUT_WR)
        started = time.monotonic()
        assert recv_until_eof(sock, timeout=2.0) == b""
        assert time.monotonic() - started < 2.0


@case("4.3", "A half-close while megabytes are owed: all of it arrives, then FIN", timeout=60)
def test_half_close_with_megabytes_owed(server: Server) -> None:
    stream = PatternStream(seed=43)
    # A small receive buffer, and nothing read: the server's output piles up unsent, and
    # the EOF reaches it while it still owes all of that.
    with connect(server.address, rcvbuf=4096) as sock:
        pushed = push_until_stalled(sock, stream, limit=16 << 20, stall=0.3)
        sock.shutdown(socket.SHUT_WR)
        read_back_stream(sock, stream, pushed)


@case("4.4", "A client's reset mid-transfer ends only its connection", timeout=30)
def test_reset_mid_transfer_affects_no_other_client(server: Server) -> None:
    with connect(server.address) as bystander:
        assert echo(bystander, b"before the reset") == b"before the reset"
        with connect(server.address, rcvbuf=4096) as rude:
            assert echo(rude, b"served") == b"served"
            # Mid-transfer: the server holds unread input from it and owes it output.
            assert push_until_stalled(rude, PatternStream(seed=3), limit=4 << 20, stall=0.2) > 0
            rude_address = rude.getsockname()[:2]
            reset(rude)
            pid = server.pid
            if pid is not None:  # then wait until the server has seen the reset
                assert wait_until(lambda: not server_holds_connection(pid, rude_address), timeout=5.0)
        assert_still_serving(server, bystander)


@case("4.5", "Clients that close without reading their echo (broken pipes) end only themselves", timeout=60)
def test_broken_pipes_affect_no_other_client(server: Server) -> None:
    payload = random.Random(45).randbytes(256 << 10)
    with connect(server.address) as bystander:
        assert echo(bystander, b"before") == b"before"
        for _ in range(20):
            with connect(server.address) as leaver:
                # The echo is on its way back when the client closes with it unread:
                # its kernel answers with RST, and the server's next send fails (EPIPE,
                # ECONNRESET; SIGPIPE for a server that did not ignore it).
                leaver.sendall(payload)
        assert_still_serving(server, bystander)


@case("4.6", "Data and FIN in one segment: all of it is echoed, then FIN", timeout=30)
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="not applicable: TCP_CORK is Linux's")
def test_data_and_fin_in_one_segment(server: Server) -> None:
    payload = random.Random(46).randbytes(1000)  # one segment's worth, under loopback's MSS
    with connect(server.address) as sock:
        # Corked, the kernel holds the data; the half-close then rides on the same
        # segment once uncorked. The server's one wakeup brings both data and EOF: a
        # server that takes EOF as "nothing to do" before echoing drops the data.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)
        assert_echoed(recv_until_eof(sock), payload)
