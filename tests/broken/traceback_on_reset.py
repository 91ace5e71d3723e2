"""Broken on purpose: handles no error in a client's thread. A client's reset kills
that thread with a traceback on stderr; the server keeps serving everyone else, so
only its log shows that something went wrong, every time a client resets."""

import socket

from tests.broken.harness import run

CAUGHT_BY = ("4.4", "4.5")


def serve_client(sock: socket.socket, buffer_size: int) -> None:
    with sock:  # DEFECT: a reset is routine, yet ConnectionResetError escapes as a traceback
        while data := sock.recv(buffer_size):
            sock.sendall(data)


run(serve_client)
