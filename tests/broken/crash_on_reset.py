"""Broken on purpose: "fail fast" on any exception no thread handled, and a client's
reset is one, so one client that resets ends the server and every other connection."""

import os
import socket
import threading

from tests.broken.harness import run

CAUGHT_BY = ("4.4", "4.5")


def serve_client(sock: socket.socket, buffer_size: int) -> None:
    with sock:  # DEFECT: a reset is routine, but nothing here handles ConnectionResetError
        while data := sock.recv(buffer_size):
            sock.sendall(data)


def crash(hook: threading.ExceptHookArgs) -> None:
    threading.__excepthook__(hook)  # the usual traceback on stderr, then:
    os._exit(1)  # fail fast: an exception no thread handled is taken for a bug


threading.excepthook = crash
run(serve_client)
