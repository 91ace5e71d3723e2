"""Broken on purpose: gives each connection a whole --buffer-size buffer up front,
before a byte arrives, as fixed-size C servers do. Every echo is right; but 10,000 idle
clients cost 640 MiB that they never use."""

import contextlib
import socket

from tests.broken.harness import run

CAUGHT_BY = ("10.1",)


def serve_client(sock: socket.socket, buffer_size: int) -> None:
    buffer = bytearray(buffer_size)  # DEFECT: the memory of a busy client, for an idle one
    with sock, contextlib.suppress(OSError):  # a reset or broken pipe ends this client only
        while count := sock.recv_into(buffer):
            sock.sendall(buffer[:count])


run(serve_client)
