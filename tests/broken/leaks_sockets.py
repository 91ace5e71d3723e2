"""Broken on purpose: answers a half-close with a half-close of its own (the client
gets its FIN and is happy) but never closes the socket, so each client leaks one fd."""

import socket

from tests.broken.harness import run

CAUGHT_BY = ("6.1", "6.3")

connections: set[socket.socket] = set()  # every client being served


def serve_client(sock: socket.socket, buffer_size: int) -> None:
    connections.add(sock)
    try:
        while data := sock.recv(buffer_size):
            sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)  # DEFECT: the FIN goes out, but the fd stays open
    except OSError:  # a reset or broken pipe: this path remembers to clean up
        connections.discard(sock)
        sock.close()


run(serve_client)
