"""Broken on purpose: reads the whole request, up to the client's EOF, and only then
echoes it: fine for a client that sends and half-closes, a hang for one that waits."""

import contextlib
import socket

from tests.broken.harness import run

CAUGHT_BY = ("2.1", "2.2")


def serve_client(sock: socket.socket, buffer_size: int) -> None:
    with sock, contextlib.suppress(OSError):  # a reset or broken pipe ends this client only
        request = bytearray()
        while data := sock.recv(buffer_size):  # DEFECT: nothing goes back until EOF
            request += data
        sock.sendall(request)


run(serve_client)
