"""Broken on purpose: takes --max-connections, like every server here, and never looks
at it, so a flood of clients gets a thread each until memory or descriptors run out."""

import contextlib
import socket

from tests.broken.harness import run


def serve_client(sock: socket.socket, buffer_size: int) -> None:
    with sock, contextlib.suppress(OSError):  # a reset or broken pipe ends this client only
        while data := sock.recv(buffer_size):
            sock.sendall(data)


run(serve_client)  # DEFECT: nothing counts the clients being served
