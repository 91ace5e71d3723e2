"""Broken on purpose: keeps every connection in a registry and forgets to take it out
when the client half-closes, so the client never gets a FIN and waits for ever."""

import socket

from tests.broken.harness import run

CAUGHT_BY = ("4.1", "4.2")

connections: set[socket.socket] = set()  # every client being served


def serve_client(sock: socket.socket, buffer_size: int) -> None:
    connections.add(sock)
    try:
        while data := sock.recv(buffer_size):
            sock.sendall(data)
        # DEFECT: done with the client, but it stays registered, and open, for ever
    except OSError:  # a reset or broken pipe ends this client only
        connections.discard(sock)
        sock.close()


run(serve_client)
