"""Isolation: many clients at once each get exactly their own bytes, and a client that
does not read cannot hold up the others."""

from __future__ import annotations

import random
import socket
from contextlib import ExitStack

import pytest

from tests.support import (
    PatternStream,
    ServerProcess,
    connect,
    echo,
    push_until_stalled,
    read_back_stream,
    recv_exactly,
)

pytestmark = pytest.mark.timeout(60)

CLIENTS = 50
ROUNDS = 20


def test_concurrent_clients_each_get_their_own_bytes(server: ServerProcess) -> None:
    generator = random.Random(50)
    with ExitStack() as stack:
        clients = [stack.enter_context(connect(server.address)) for _ in range(CLIENTS)]
        for round_number in range(ROUNDS):
            # Each chunk names its client and round, so a byte delivered to the wrong
            # client, or in the wrong order, cannot match.
            chunks = [
                f"client {index} round {round_number}:".encode()
                + generator.randbytes(generator.randint(1, 40))
                for index in range(CLIENTS)
            ]
            # Round robin: every client's chunk is in flight before any echo is read.
            for sock, chunk in zip(clients, chunks, strict=True):
                sock.sendall(chunk)
            for index, (sock, chunk) in enumerate(zip(clients, chunks, strict=True)):
                assert recv_exactly(sock, len(chunk)) == chunk, f"client {index}, round {round_number}"


def test_client_that_never_reads_does_not_stall_others(server: ServerProcess) -> None:
    stream = PatternStream(seed=4)
    with connect(server.address, rcvbuf=4096) as hog:
        assert echo(hog, b"served") == b"served"
        pushed = push_until_stalled(hog, stream, limit=64 << 20, stall=0.3)
        # The hog is now blocked: the server owes it all it may and has stopped reading it.
        with connect(server.address, timeout=5.0) as other:
            for number in range(10):
                message = f"still served {number}".encode()
                assert echo(other, message) == message
        # Then the hog reads: it gets every byte it pushed, in order.
        hog.shutdown(socket.SHUT_WR)
        read_back_stream(hog, stream, pushed)
