"""Group 1, data fidelity: every byte comes back in order and unchanged, whatever its
value, the payload's size, or how the client cuts its writes."""

from __future__ import annotations

import random
import selectors
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.clients import (
    assert_echoed,
    connect,
    echo,
    exchange,
    recv_exactly,
    recv_until_eof,
    send_then_half_close,
)
from tests.conformance.cases import case
from tests.servers import Server
from tests.stalls import stall_ends_the_test
from tests.streams import payloads
from toolkit.process import Address

# Per example: ample for 256 KiB over loopback, short enough that a silent server
# fails the case in seconds.
HYPOTHESIS_TIMEOUT = 5.0


@case("1.1", "Every byte value, 0 to 255, comes back unchanged", timeout=30)
def test_every_byte_value_round_trips(server: Server) -> None:
    # Both orders, so no byte value is only ever tested at the edge of a segment.
    payload = bytes(range(256)) + bytes(reversed(range(256)))
    with connect(server.address) as sock:
        assert_echoed(echo(sock, payload), payload)


@case("1.2", "A one-byte write is echoed on its own, whatever the byte", timeout=30)
@pytest.mark.parametrize("byte", [b"\x00", b"\xff", b"a", b"\n"], ids=["nul", "0xff", "letter", "newline"])
def test_one_byte_write(server: Server, byte: bytes) -> None:
    with connect(server.address) as sock:
        assert echo(sock, byte) == byte


@case("1.3", "Nothing comes back that was not sent: empty writes get no bytes", timeout=30)
def test_nothing_unprompted(server: Server) -> None:
    with connect(server.address) as sock, selectors.DefaultSelector() as selector:
        for _ in range(3):
            assert sock.send(b"") == 0  # TCP sends nothing for it: the server sees no data
        # Waiting for something not to happen needs a fixed wait: a server that greets,
        # prompts or answers an empty write has sent it well within this.
        selector.register(sock, selectors.EVENT_READ)
        unprompted = sock.recv(4096) if selector.select(0.3) else b""
        assert unprompted == b"", f"the server sent {unprompted!r} before receiving anything"
        assert echo(sock, b"then one write") == b"then one write"


# From one byte to 16 MiB, with the sizes either side of a power of two, where a server
# that mishandles a full buffer or loses its last one shows it; 128 KiB + 1 is two full
# default buffers and a byte.
SIZES = [1, 2, 1023, 65535, 65536, 65537, (128 << 10) + 1, (1 << 20) + 1, 16 << 20]


@case("1.4", "Payloads from 1 byte to 16 MiB come back whole, then EOF", timeout=90)
@pytest.mark.parametrize("size", SIZES, ids=[f"{size}B" for size in SIZES])
def test_payload_of_any_size(server: Server, size: int) -> None:
    payload = random.Random(size).randbytes(size)
    with connect(server.address) as sock:
        # Sent while reading: a client that sends all before reading deadlocks on its own.
        assert_echoed(exchange(sock, payload, timeout=60.0), payload)


@case("1.5", "A reader that pauses mid-stream still gets every byte: partial sends lose nothing", timeout=60)
def test_pause_in_reading_loses_nothing(server: Server) -> None:
    payload = random.Random(15).randbytes(4 << 20)
    # A small receive buffer: while the client is not reading, the server's sends soon
    # meet a full socket buffer, and send() writes part of what it is given, or nothing.
    with connect(server.address, rcvbuf=4096) as sock, ThreadPoolExecutor(max_workers=1) as pool:
        sending = pool.submit(send_then_half_close, sock, payload)
        received = recv_exactly(sock, 64 << 10)
        time.sleep(0.5)  # the pause: the stimulus itself, not a wait for something
        received += recv_until_eof(sock, timeout=30.0)
        sending.result(timeout=30.0)
    assert_echoed(received, payload)


@case("1.6", "A thousand tiny writes come back as one stream, in order", timeout=30)
def test_many_small_writes_come_back_as_one_stream(server: Server) -> None:
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


ANY_PAYLOAD = payloads(256 << 10)


@case("1.7", "Any payload (hypothesis: any bytes to 256 KiB, edge sizes often) echoes exactly", timeout=120)
def test_any_payload(server: Server) -> None:
    echoes_any_payload(server.address)


@given(payload=ANY_PAYLOAD)
@example(payload=bytes(128 << 10))  # all 0x00
@example(payload=b"\xff" * ((128 << 10) + 1))  # all 0xff
@stall_ends_the_test()
def echoes_any_payload(address: Address, payload: bytes) -> None:
    # A fresh client per example, against the module's one server: examples must not
    # share a connection, or one example's leftovers would fail the next.
    with connect(address, timeout=HYPOTHESIS_TIMEOUT) as sock:
        assert_echoed(exchange(sock, payload, timeout=HYPOTHESIS_TIMEOUT), payload)


# Write sizes and pauses, drawn together: the same stream cut into pieces at random.
chunkings = st.lists(st.tuples(st.integers(1, 8192), st.sampled_from([0.0, 0.0, 0.001, 0.01])), max_size=40)
STREAM = random.Random(1862).randbytes(64 << 10)


@case("1.8", "One stream cut into any writes, with any pauses, echoes as the same stream", timeout=120)
def test_any_chunking(server: Server) -> None:
    echoes_any_chunking(server.address)


@given(chunking=chunkings)
@stall_ends_the_test()
def echoes_any_chunking(address: Address, chunking: list[tuple[int, float]]) -> None:
    with connect(address, timeout=HYPOTHESIS_TIMEOUT) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # each write its own segment
        sent = 0
        for size, pause in chunking:
            sock.sendall(STREAM[sent : sent + size])
            sent += size
            time.sleep(pause)
        sock.sendall(STREAM[sent:])  # whatever the cuts left over
        # Boundaries are meaningless: only the whole stream, then EOF, is checked.
        sock.shutdown(socket.SHUT_WR)
        assert_echoed(recv_until_eof(sock, timeout=HYPOTHESIS_TIMEOUT), STREAM)
