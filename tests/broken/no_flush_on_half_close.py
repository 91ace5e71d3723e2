"""Broken on purpose: batches its echo into fewer, larger sends, and when the client
half-closes it closes at once, dropping the batch it still owes."""

import contextlib
import select
import socket

from tests.broken.harness import run

CAUGHT_BY = ("4.1", "4.6")


def serve_client(sock: socket.socket, buffer_size: int) -> None:
    batch = bytearray()  # echo owed but not sent yet: fewer, larger sends
    with sock, contextlib.suppress(OSError):  # a reset or broken pipe ends this client only
        while True:
            while len(batch) < buffer_size and select.select([sock], [], [], 0.05)[0]:
                if not (data := sock.recv(buffer_size - len(batch))):
                    return  # DEFECT: the half-close is owed the batch; closing drops it
                batch += data
            del batch[: sock.send(batch)]  # the batch is full, or the client paused: send what fits


run(serve_client)
