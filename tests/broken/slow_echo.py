"""Broken on purpose: holds each echo for 50 ms, as a server that flushes on a timer
does, to send fewer, fuller segments. Every byte arrives, in order; just late."""

import contextlib
import socket
import time

from tests.broken.harness import run

CAUGHT_BY = ("2.4",)
HOLD = 0.05


def serve_client(sock: socket.socket, buffer_size: int) -> None:
    with sock, contextlib.suppress(OSError):  # a reset or broken pipe ends this client only
        while data := sock.recv(buffer_size):
            time.sleep(HOLD)  # DEFECT: an echo server owes the bytes now, not at the next tick
            sock.sendall(data)


run(serve_client)
