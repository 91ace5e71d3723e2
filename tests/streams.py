"""Payload streams too large to hold: bytes made again from their offset, pushed without
reading back until the server stops taking them, then read back and checked byte by byte.
"""

from __future__ import annotations

import random
import selectors
import socket
import time
from collections.abc import Sequence

from tests.clients import assert_echoed, recv_some


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
