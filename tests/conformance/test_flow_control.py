"""Backpressure: a client that pushes without reading cannot grow the server's memory.

At the --buffer-size cap the server must stop reading from that client. Its kernel
buffers then fill, TCP's window closes, and the client's sends stop being accepted.
A server that keeps reading instead holds everything pushed in its own memory.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest

from tests.support import (
    PatternStream,
    ServerProcess,
    connect,
    echo,
    push_until_stalled,
    read_back_stream,
    server_rss,
)

PUSH_LIMIT = 256 << 20
# Far above the default 64 KiB cap plus the interpreter's noise, far below the push
# limit: a server that buffers what it is pushed crosses it within the first 32 MiB.
MAX_RSS_GROWTH = 32 << 20
# Once every buffer on the path is full, no send is accepted at all; a second without
# one means the window is closed, not that a busy machine is slow.
STALL = 1.0


@pytest.mark.timeout(90)
def test_backpressure_bounds_server_memory(
    server: ServerProcess, server_name: str, record_property: Callable[[str, object], None]
) -> None:
    stream = PatternStream(seed=256)
    # A small receive buffer on the client: what the server sends piles up on the
    # server's side, not in a large client-side buffer.
    with connect(server.address, rcvbuf=4096, timeout=30.0) as sock:
        assert echo(sock, b"connected") == b"connected"
        baseline = server_rss(server.pid)
        pushed = push_until_stalled(sock, stream, limit=PUSH_LIMIT, stall=STALL)
        growth = server_rss(server.pid) - baseline
        record_property("bytes_pushed", pushed)
        record_property("rss_growth_bytes", growth)
        # The figures, for the record: shown with -s (or -rP under xdist) and in --junitxml.
        print(f"\n{server_name}: pushed {pushed / 2**20:.1f} MiB unread; RSS grew {growth / 2**20:.2f} MiB")
        assert pushed < PUSH_LIMIT, "the server read 256 MiB from a client that read nothing back"
        assert growth < MAX_RSS_GROWTH, f"server RSS grew {growth} bytes while {pushed} bytes were pushed"
        # Everything pushed is still owed: after the half-close it must all come back.
        sock.shutdown(socket.SHUT_WR)
        read_back_stream(sock, stream, pushed)
