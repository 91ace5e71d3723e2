"""Broken on purpose: a non-blocking loop that calls send() once per read and ignores
what it returns, so whatever the kernel's send buffer had no room for is lost."""

import contextlib
import select
import socket

from tests.broken.harness import run

CAUGHT_BY = ("1.4", "1.5")


def serve_client(sock: socket.socket, buffer_size: int) -> None:
    sock.setblocking(False)
    with sock, contextlib.suppress(OSError):  # a reset or broken pipe ends this client only
        while True:
            select.select([sock], [], [])
            try:
                data = sock.recv(buffer_size)
            except BlockingIOError:
                continue
            if not data:
                return
            with contextlib.suppress(BlockingIOError):
                sock.send(data)  # DEFECT: a partial send drops the rest; a full buffer drops it all


run(serve_client)
