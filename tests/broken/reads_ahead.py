"""Broken on purpose: a reader thread and a sender thread per client, with a queue of
128 reads between them: up to 8 MiB read ahead of what the client takes back, whatever
--buffer-size says. Bounded, so a loose memory bound passes it; but not the cap."""

import contextlib
import queue
import socket
import threading

from tests.broken.harness import run

CAUGHT_BY = ("5.1", "8.8", "9.3")
READ_SIZE = 64 << 10
AHEAD = 128  # reads: 8 MiB


def send_from(sock: socket.socket, chunks: "queue.Queue[bytes]") -> None:
    with contextlib.suppress(OSError):
        while data := chunks.get():
            sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)


def serve_client(sock: socket.socket, buffer_size: int) -> None:
    chunks: queue.Queue[bytes] = queue.Queue(maxsize=AHEAD)  # DEFECT: buffer_size ignored
    sender = threading.Thread(target=send_from, args=(sock, chunks))
    sender.start()
    with sock:
        with contextlib.suppress(OSError):
            while data := sock.recv(READ_SIZE):
                chunks.put(data)
        chunks.put(b"")
        sender.join()


run(serve_client)
