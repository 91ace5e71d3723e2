"""Group 5, flow control: a client that pushes without reading cannot grow the
server's memory, and once it reads, it gets everything.

At the --buffer-size cap the server must stop reading from that client. Its kernel
buffers then fill, TCP's window closes, and the client's sends stop being accepted.
A server that keeps reading instead holds everything pushed in its own memory.
"""

from __future__ import annotations

import socket

from tests.clients import assert_echoed, connect, echo, recv_exactly
from tests.conformance.cases import case
from tests.servers import RecordProperty
from tests.streams import PatternStream, push_until_stalled, read_back_stream
from toolkit.measure import server_rss
from toolkit.process import ServerProcess

PUSH_LIMIT = 256 << 20
# The default 64 KiB cap, one read past it (asyncio's transport reads 256 KiB at a
# time), and slack for the interpreter and the allocator: our models grow by 0 to
# 360 KiB. A server that reads ahead of the cap by megabytes crosses it.
MAX_RSS_GROWTH = 4 << 20
# Once every buffer on the path is full, no send is accepted at all; a second without
# one means the window is closed, not that a busy machine is slow.
STALL = 1.0


@case(
    "5.1",
    "Pushing 256 MiB without reading stalls, the server's memory bounded; then all arrives",
    timeout=120,
)
def test_backpressure_bounds_server_memory(
    server_process: ServerProcess, record_property: RecordProperty
) -> None:
    server = server_process
    stream = PatternStream(seed=256)
    # A small receive buffer on the client: what the server sends piles up on the
    # server's side, not in a large client-side buffer.
    with connect(server.address, rcvbuf=4096, timeout=30.0) as sock:
        assert echo(sock, b"connected") == b"connected"
        baseline = server_rss(server.pid)
        pushed = push_until_stalled(sock, stream, limit=PUSH_LIMIT, stall=STALL)
        growth = server_rss(server.pid) - baseline
        record_property("measured", f"{pushed >> 20} MiB pushed, RSS {growth >> 10:+} KiB")
        assert pushed < PUSH_LIMIT, "the server read 256 MiB from a client that read nothing back"
        assert growth < MAX_RSS_GROWTH, f"server RSS grew {growth} bytes while {pushed} bytes were pushed"
        # Everything pushed is still owed: after the half-close it must all come back.
        sock.shutdown(socket.SHUT_WR)
        read_back_stream(sock, stream, pushed)


@case("5.2", "Once a stalled client reads, the server reads from it again", timeout=60)
def test_reading_resumes_after_a_stall(server_process: ServerProcess) -> None:
    stream = PatternStream(seed=52)
    offset = 0
    with connect(server_process.address, rcvbuf=4096) as sock:
        for _ in range(3):
            # Push until the server stops reading, read everything back (no half-close),
            # and push again: a server that never re-arms reading stalls on the second.
            pushed = push_until_stalled(sock, stream, limit=8 << 20, stall=0.3, start=offset)
            assert pushed > 0, "the server never read again after the client caught up"
            assert_echoed(recv_exactly(sock, pushed, timeout=30.0), stream.read(offset, pushed), start=offset)
            offset += pushed
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(1) == b""
