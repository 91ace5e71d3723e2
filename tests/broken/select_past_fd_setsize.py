"""Broken on purpose: each client thread waits in select() before each recv(), a
pattern tutorials teach for read timeouts. select() cannot watch a descriptor numbered
1024 (FD_SETSIZE) or above: past that, Python raises ValueError and the client is
dropped unanswered, its socket never closed."""

import select
import socket

from tests.broken.harness import run

CAUGHT_BY = ("8.4",)


def serve_client(sock: socket.socket, buffer_size: int) -> None:
    while True:
        select.select([sock], [], [])  # DEFECT: ValueError once sock.fileno() >= 1024
        data = sock.recv(buffer_size)
        if not data:
            break
        sock.sendall(data)
    sock.close()


run(serve_client)
