"""Broken on purpose: echoes data.upper(), not the bytes it was sent."""

import contextlib
import socket

from tests.broken.harness import run

CAUGHT_BY = ("1.1", "1.2", "1.6")


def serve_client(sock: socket.socket, buffer_size: int) -> None:
    with sock, contextlib.suppress(OSError):  # a reset or broken pipe ends this client only
        while data := sock.recv(buffer_size):
            sock.sendall(data.upper())  # DEFECT: an echo server must not change a byte


run(serve_client)
