"""Fidelity: every byte comes back in order and unchanged, whatever its value and
however the client splits its writes."""

from __future__ import annotations

import random
import socket
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support import (
    ServerProcess,
    assert_echoed,
    connect,
    echo,
    exchange,
    recv_exactly,
    recv_until_eof,
)

pytestmark = pytest.mark.timeout(30)


def test_every_byte_value_round_trips(server: ServerProcess) -> None:
    # Both orders, so no byte value is only ever tested at the edge of a segment.
    payload = bytes(range(256)) + bytes(reversed(range(256)))
    with connect(server.address) as sock:
        assert_echoed(echo(sock, payload), payload)


@pytest.mark.parametrize("byte", [b"\x00", b"\xff", b"a", b"\n"], ids=["nul", "0xff", "letter", "newline"])
def test_one_byte_payload(server: ServerProcess, byte: bytes) -> None:
    with connect(server.address) as sock:
        assert echo(sock, byte) == byte


def test_many_small_writes_come_back_as_one_stream(server: ServerProcess) -> None:
    generator = random.Random(862)
    writes = [generator.randbytes(generator.randint(1, 7)) for _ in range(1000)]
    with connect(server.address) as sock:
        # Without Nagle's delay each write leaves as its own segment: the server
        # really sees a thousand small reads, not a few coalesced ones.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for write in writes:
            sock.sendall(write)
        payload = b"".join(writes)
        assert_echoed(recv_exactly(sock, len(payload)), payload)


def test_multi_megabyte_payload_streamed_while_reading(server: ServerProcess) -> None:
    # One byte past 8 MiB: a size that is a multiple of every buffer size could hide a
    # server that loses the tail of its last buffer.
    payload = random.Random(7007).randbytes((8 << 20) + 1)
    with connect(server.address) as sock:
        assert_echoed(exchange(sock, payload), payload)


# Write sizes and pauses, drawn together: the same stream cut into pieces at random.
chunkings = st.lists(st.tuples(st.integers(1, 8192), st.sampled_from([0.0, 0.0, 0.001, 0.01])), max_size=40)


@given(payload=st.binary(max_size=64 << 10), chunking=chunkings)
def test_any_payload_any_chunking_echoes_the_same_stream(
    server: ServerProcess, payload: bytes, chunking: list[tuple[int, float]]
) -> None:
    # A fresh client per example, against the module's one server: examples must not
    # share a connection, or one example's leftovers would fail the next.
    with connect(server.address) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # each write its own segment
        sent = 0
        for size, pause in chunking:
            sock.sendall(payload[sent : sent + size])
            sent += size
            time.sleep(pause)
        sock.sendall(payload[sent:])  # whatever the cuts left over
        # Boundaries are meaningless: only the whole stream, then EOF, is checked.
        sock.shutdown(socket.SHUT_WR)
        assert_echoed(recv_until_eof(sock), payload)
