"""Broken on purpose: hands every echo to a sender thread and goes straight back to
recv(), so a client that does not read makes the server hold all it sends."""

import contextlib
import socket
from concurrent.futures import ThreadPoolExecutor

from tests.broken.harness import run

CAUGHT_BY = ("5.1", "9.3")


def serve_client(sock: socket.socket, buffer_size: int) -> None:
    # Sends go to a thread of their own, so this one can go straight back to recv().
    with sock, ThreadPoolExecutor(max_workers=1) as sender, contextlib.suppress(OSError):
        while data := sock.recv(buffer_size):
            sender.submit(sock.sendall, data)  # DEFECT: nothing caps the sender's queue


run(serve_client)
