"""Closing: a half-close gets everything owed then a FIN; a client's reset ends only
that client's connection."""

from __future__ import annotations

import random
import socket
import time

import pytest

from tests.support import (
    PatternStream,
    ServerProcess,
    assert_echoed,
    connect,
    echo,
    push_until_stalled,
    recv_until_eof,
    reset,
    server_holds_connection,
    wait_until,
)

pytestmark = pytest.mark.timeout(30)


def test_half_close_after_sending_gets_everything_then_fin(server: ServerProcess) -> None:
    payload = random.Random(1).randbytes(32 << 10)
    with connect(server.address) as sock:
        # Send and half-close before reading anything: the server sees the data and
        # the EOF together, and must still send every byte before its FIN.
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        assert_echoed(recv_until_eof(sock), payload)  # a RST would raise ConnectionResetError
        assert sock.recv(1) == b"", "after the FIN the connection stays cleanly closed"


def test_half_close_with_nothing_sent_gets_prompt_eof(server: ServerProcess) -> None:
    with connect(server.address, timeout=2.0) as sock:
        sock.shutdown(socket.SHUT_WR)
        started = time.monotonic()
        assert recv_until_eof(sock, timeout=2.0) == b""
        assert time.monotonic() - started < 2.0


def test_reset_mid_transfer_affects_no_other_client(server: ServerProcess) -> None:
    with connect(server.address) as bystander:
        assert echo(bystander, b"before the reset") == b"before the reset"
        with connect(server.address, rcvbuf=4096) as rude:
            assert echo(rude, b"served") == b"served"
            # Mid-transfer: the server holds unread input from it and owes it output.
            assert push_until_stalled(rude, PatternStream(seed=3), limit=4 << 20, stall=0.2) > 0
            # Reset, then wait until the server has closed its end: it has seen the reset.
            rude_address = rude.getsockname()[:2]
            reset(rude)
            assert wait_until(lambda: not server_holds_connection(server.pid, rude_address), timeout=5.0)
        # A server that dies of the reset may take a moment to finish dying: keep watching.
        watch_until = time.monotonic() + 0.5
        while time.monotonic() < watch_until:
            assert echo(bystander, b"after the reset") == b"after the reset"
            time.sleep(0.01)
        with connect(server.address) as newcomer:
            assert echo(newcomer, b"newcomer") == b"newcomer"
        bystander.shutdown(socket.SHUT_WR)
        assert recv_until_eof(bystander) == b""
    assert server.running()
