"""Broken on purpose: a stop signal sets a flag the main loop never gets to look at, so
SIGTERM and SIGINT change nothing while no client connects."""

import contextlib
import socket

from tests.broken.harness import run


def serve_client(sock: socket.socket, buffer_size: int) -> None:
    with sock, contextlib.suppress(OSError):  # a reset or broken pipe ends this client only
        while data := sock.recv(buffer_size):
            sock.sendall(data)


# DEFECT: accept() blocks with no timeout, and after the handler runs it is retried
# (PEP 475), so the loop never gets to check the flag while no client connects.
run(serve_client, accept_timeout=None)
