"""Broken on purpose: the fork server's classic leak. The parent never closes its copy
of a client's socket after fork(), so the connection outlives the child that served it:
when a child crashes, its client is left hanging, never told (no FIN, no RST); and every
later child inherits the copies of all the clients before it."""

import socket

import forking.server as model
from common import parse_config
from forking import MODEL
from tests.broken.harness import declaration

CAUGHT_BY = ("tests/test_forking.py",)  # it runs its check against this server

kept: list[socket.socket] = []


class KeepsCopies:
    """The listener, but each client socket it accepts is also kept, open, in the parent."""

    def __init__(self, listener: socket.socket) -> None:
        self.listener = listener

    def accept(self) -> tuple[socket.socket, object]:
        sock, address = self.listener.accept()
        kept.append(sock.dup())  # DEFECT: a copy that nobody closes
        return sock, address

    def __getattr__(self, name: str) -> object:
        return getattr(self.listener, name)


class EchoServer(model.EchoServer):
    def listen(self) -> None:
        super().listen()
        self.listener = KeepsCopies(self.listener)  # type: ignore[assignment]


EchoServer(
    parse_config(declaration("tests.broken.keeps_client_copy", like=MODEL), "forking, keeping copies")
).serve()
