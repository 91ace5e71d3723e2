"""Broken on purpose: reads through the C library's recv() directly, as C code does,
and takes every -1 for a dead connection. A signal that interrupts the call returns -1
with errno EINTR, which means "call again"; here it drops the client mid-transfer.
(Python's own socket.recv() retries EINTR itself: PEP 475.)"""

import ctypes
import socket

from tests.broken.harness import run

CAUGHT_BY = ("9.5",)

libc = ctypes.CDLL(None, use_errno=True)


def serve_client(sock: socket.socket, buffer_size: int) -> None:
    buffer = ctypes.create_string_buffer(buffer_size)
    with sock:
        while True:
            count = libc.recv(sock.fileno(), buffer, buffer_size, 0)
            if count <= 0:
                return  # DEFECT: -1 with EINTR is not an error; C code must call again
            sock.sendall(buffer.raw[:count])


run(serve_client)
