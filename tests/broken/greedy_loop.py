"""Broken on purpose: one thread serves every client, and once a client has data it
keeps serving that client for as long as more arrives within 50 ms, to save trips
through select(). A client that streams without a pause has the server to itself;
every other client waits."""

import contextlib
import queue
import select
import socket
import threading

from tests.broken.harness import run

CAUGHT_BY = ("3.5",)
MORE_WITHIN = 0.05

arrivals: queue.SimpleQueue[socket.socket] = queue.SimpleQueue()


def hand_over(sock: socket.socket, buffer_size: int) -> None:
    arrivals.put(sock)  # the loop below serves it from now on


def serve(sock: socket.socket) -> bool:
    """Echo what sock sends while it keeps sending; False once it has gone."""
    with contextlib.suppress(OSError):
        while select.select([sock], [], [], MORE_WITHIN)[0]:  # DEFECT: nobody else gets a turn
            if not (data := sock.recv(1 << 16)):
                break
            sock.sendall(data)
        else:
            return True
    sock.close()
    return False


def loop() -> None:
    clients: list[socket.socket] = []
    while True:
        while not arrivals.empty():
            clients.append(arrivals.get())
        readable = select.select(clients, [], [], 0.01)[0] if clients else []
        clients = [sock for sock in clients if sock not in readable or serve(sock)]
        if not clients:
            clients.append(arrivals.get())  # nothing to serve: wait for a client


threading.Thread(target=loop, daemon=True).start()
run(hand_over, threads=False)
