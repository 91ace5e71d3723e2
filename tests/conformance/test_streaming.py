"""Group 2, streaming: the echo arrives while the client is still sending. A server
that collects until the client's EOF, or until a line ends, or until its read buffer
is full, passes a test that half-closes at once; it fails these."""

from __future__ import annotations

import random
import socket
import statistics
from concurrent.futures import ThreadPoolExecutor

from tests.clients import IO_TIMEOUT, assert_echoed, connect, echo, recv_exactly, round_trip_times
from tests.conformance.cases import case
from tests.servers import RecordProperty, Server
from tests.streams import PatternStream


@case("2.1", "Lock step: each write's echo arrives before the next write is sent", timeout=60)
def test_lock_step(server: Server) -> None:
    generator = random.Random(21)
    with connect(server.address) as sock:
        for number in range(200):
            chunk = generator.randbytes(generator.randint(1, 4096))
            sock.sendall(chunk)
            try:
                received = recv_exactly(sock, len(chunk))
            except TimeoutError:
                raise AssertionError(
                    f"write {number}: no echo within {IO_TIMEOUT}s, the client still sending"
                ) from None
            assert_echoed(received, chunk)


@case("2.2", "Bytes with no line ending are echoed without waiting for one", timeout=30)
def test_no_line_ending(server: Server) -> None:
    with connect(server.address) as sock:
        assert echo(sock, b"no line ending here") == b"no line ending here"
        assert echo(sock, b"\r") == b"\r"  # half a CRLF


STREAMED = 32 << 20


@case("2.3", "A stream far larger than the socket buffers echoes while it is still being sent", timeout=90)
def test_echo_while_sending(server: Server) -> None:
    stream = PatternStream(seed=23)
    with connect(server.address) as sock:
        # The client never half-closes until all has come back: only a server that
        # echoes as it reads can get 32 MiB through buffers a few MiB deep.
        def send_all() -> None:
            for offset in range(0, STREAMED, 1 << 16):
                sock.sendall(stream.read(offset, 1 << 16))

        with ThreadPoolExecutor(max_workers=1) as pool:
            sending = pool.submit(send_all)
            received = 0
            while received < STREAMED:
                chunk = sock.recv(1 << 16)
                assert chunk, f"EOF after {received} of {STREAMED} bytes, before the client half-closed"
                assert_echoed(chunk, stream.read(received, len(chunk)), start=received)
                received += len(chunk)
            sending.result(timeout=IO_TIMEOUT)


ROUND_TRIPS = 300
BATCH = 50
# A 1-byte echo over loopback takes tens of microseconds; a loaded machine adds a few
# milliseconds now and then, which a median ignores. A server that holds each echo
# (batching, a timer-driven loop, Nagle's delay on its side) adds tens of ms to each.
MAX_MEDIAN_ROUND_TRIP = 0.005


@case("2.4", "Latency: the median of 300 lock-step 1-byte round trips stays under 5 ms", timeout=60)
def test_round_trip_latency(server: Server, record_property: RecordProperty) -> None:
    with connect(server.address) as sock:
        # Our side sends each byte at once: any delay measured is the server's.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        times: list[float] = []
        for _ in range(0, ROUND_TRIPS, BATCH):
            times += round_trip_times(sock, BATCH)
            if sum(time >= MAX_MEDIAN_ROUND_TRIP for time in times) > ROUND_TRIPS // 2:
                break  # more than half of all are slow already: the median is past the bound
    median = statistics.median(times)
    record_property(
        "measured", f"1-byte round trip: median {median * 1e3:.2f} ms, worst {max(times) * 1e3:.1f} ms"
    )
    assert median < MAX_MEDIAN_ROUND_TRIP, f"median round trip {median * 1e3:.1f} ms over {ROUND_TRIPS}"
