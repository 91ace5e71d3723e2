"""Broken on purpose: serves one client at a time; the next waits in the listen backlog
until the current one has left."""

import contextlib
import socket

from tests.broken.harness import run


def serve_client(sock: socket.socket, buffer_size: int) -> None:
    with sock, contextlib.suppress(OSError):  # a reset or broken pipe ends this client only
        while data := sock.recv(buffer_size):
            sock.sendall(data)


run(serve_client, threads=False)  # DEFECT: serve_client runs in the accepting thread
