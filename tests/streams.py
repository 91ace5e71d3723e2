"""Payload streams too large to hold: bytes made again from their offset, pushed without
reading back until the server stops taking them, then read back and checked byte by byte.
"""

from __future__ import annotations

import contextlib
import random
import selectors
import socket
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from hypothesis import strategies as st

from tests.clients import IO_TIMEOUT, assert_echoed, recv_some


class PatternStream:
    """Deterministic pseudo-random bytes, addressed by offset, made 64 KiB at a time.

    A test can push hundreds of MiB and check every byte that comes back without ever
    holding the whole payload: any slice can be made again from its offset.
    """

    BLOCK = 1 << 16

    def __init__(self, seed: int) -> None:
        self.seed = seed
        # Reads move forward, so remembering the last block made spares remaking it
        # for every read that starts inside it.
        self._last_index = -1
        self._last_block = b""

    def _block(self, index: int) -> bytes:
        if index != self._last_index:
            self._last_block = random.Random(self.seed * 2**32 + index).randbytes(self.BLOCK)
            self._last_index = index
        return self._last_block

    def read(self, offset: int, size: int) -> bytes:
        parts = []
        end = offset + size
        while offset < end:
            index, start = divmod(offset, self.BLOCK)
            part = self._block(index)[start : start + end - offset]
            parts.append(part)
            offset += len(part)
        return b"".join(parts)


# A prime: pushed totals then rarely land on a multiple of any buffer size, where a
# server that loses the tail of its last buffer would get away with it.
PUSH_CHUNK = 65521


def push_until_stalled(
    sock: socket.socket, stream: PatternStream, *, limit: int, stall: float, start: int = 0
) -> int:
    """Send stream bytes from offset start without reading anything back, until limit
    bytes are sent or the socket has not been writable for `stall` seconds. Returns the
    bytes sent."""
    return push_all_until_stalled([sock], stream, limit_each=limit, stall=stall, start=start)


def push_all_until_stalled(
    clients: Sequence[socket.socket], stream: PatternStream, *, limit_each: int, stall: float, start: int = 0
) -> int:
    """Push stream bytes from offset start to every client at once, reading nothing back,
    until each has sent limit_each bytes or none has been writable for `stall` seconds.
    Returns the bytes sent in all.

    A writability wait rather than a blocking send, so a stalled push ends the loop
    instead of hanging inside sendall(). (A socket with a timeout, as connect() makes,
    sends only what fits once writable: send() returns a partial count, never blocks.)
    """
    pushed = dict.fromkeys(clients, 0)
    with selectors.DefaultSelector() as selector:
        for sock in clients:
            selector.register(sock, selectors.EVENT_WRITE, sock)
        while selector.get_map() and (ready := selector.select(stall)):
            for key, _ in ready:
                sock = key.data
                size = min(PUSH_CHUNK, limit_each - pushed[sock])
                pushed[sock] += sock.send(stream.read(start + pushed[sock], size))
                if pushed[sock] >= limit_each:
                    selector.unregister(sock)
    return sum(pushed.values())


def read_back_stream(sock: socket.socket, stream: PatternStream, size: int, *, timeout: float = 60.0) -> None:
    """Read until EOF and check it is exactly the first size bytes of stream, in order."""
    offset = 0
    deadline = time.monotonic() + timeout
    while chunk := recv_some(sock, 1 << 16, received=offset, expected=size):
        assert_echoed(chunk, stream.read(offset, len(chunk)), start=offset)
        offset += len(chunk)
        assert offset <= size, f"received more than the {size} bytes sent"
        if time.monotonic() > deadline:
            raise TimeoutError(f"no EOF within {timeout}s ({offset} of {size} bytes received)")
    assert offset == size, f"EOF after {offset} of {size} bytes"


def read_whole_stream(
    sock: socket.socket, stream: PatternStream, size: int, *, on_progress: Callable[[int], None]
) -> int:
    """Send the first size bytes of stream from a thread, then half-close, while reading
    the echo here; every byte read must be the stream's next. Returns the bytes echoed
    before the server's FIN or reset: a server that stops early leaves a prefix, and
    the sender's broken pipe is then expected. on_progress(received) after each read."""

    def send_all() -> None:
        with contextlib.suppress(OSError):  # the server went: what it echoed says what it took
            for offset in range(0, size, PatternStream.BLOCK):
                sock.sendall(stream.read(offset, min(PatternStream.BLOCK, size - offset)))
            sock.shutdown(socket.SHUT_WR)

    received = 0
    with ThreadPoolExecutor(max_workers=1) as pool:
        sending = pool.submit(send_all)
        with contextlib.suppress(ConnectionResetError):
            while chunk := recv_some(sock, 1 << 16, received=received, expected=size):
                assert_echoed(chunk, stream.read(received, len(chunk)), start=received)
                received += len(chunk)
                on_progress(received)
        sending.result(timeout=IO_TIMEOUT)
    return received


# Sizes where a server's buffering shows its edges: nothing, one byte, either side of
# the default 64 KiB buffer, and either side of two of them.
EDGE_SIZES = (0, 1, 65535, 65536, 65537, (128 << 10) - 1, 128 << 10, (128 << 10) + 1)


def payloads(max_size: int, *, min_size: int = 0) -> st.SearchStrategy[bytes]:
    """Payloads for hypothesis, their size drawn on purpose: an edge size half the time,
    any size up to max_size otherwise; the bytes drawn as a seed (cheap at 256 KiB) or,
    for short payloads, byte by byte, which hypothesis then shrinks well."""
    edges = [size for size in EDGE_SIZES if min_size <= size <= max_size]
    sizes = st.one_of(st.sampled_from(edges), st.integers(min_size, max_size))
    seeded = st.builds(lambda size, seed: random.Random(seed).randbytes(size), sizes, st.integers(0, 2**32))
    return st.one_of(seeded, st.binary(min_size=min_size, max_size=min(64, max_size)))
