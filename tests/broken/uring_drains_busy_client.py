"""Broken on purpose: uring_io with an edge-triggered habit. A completion is a one-off
report, like an edge: so after a recv completes it goes on reading that socket itself,
echoing as it goes, until the client has nothing more to say (a tenth of a second of
silence), with no bound on the client's turn. A client that streams without pause
never ends its turn, and every other client waits behind it."""

import select
import socket

import uring_io.server as model
from common import READ_SIZE, parse_config
from tests.broken.harness import declaration
from uring_io import MODEL

CAUGHT_BY = ("tests/test_uring_io.py",)  # it runs its check against this server


def still_sending(sock: socket.socket) -> bool:
    return bool(select.select([sock], [], [], 0.1)[0])  # more within a tenth of a second


class EchoServer(model.EchoServer):
    def read(self, client: model.Client, result: int) -> None:
        super().read(client, result)
        # DEFECT: this client's turn lasts as long as it keeps sending
        while client.number in self.clients and not client.eof and still_sending(client.sock):
            try:
                data = client.sock.recv(READ_SIZE)
            except OSError:
                return  # the next completion tells
            client.eof = not data
            client.outbuf += data
            self.write(client)

    def write(self, client: model.Client) -> None:
        try:
            client.sock.sendall(client.outbuf)  # in turn, so the bytes stay in order
        except OSError as error:
            return self.close_client(client, error)
        client.outbuf.clear()
        super().write(client)


EchoServer(
    parse_config(
        declaration("tests.broken.uring_drains_busy_client", like=MODEL),
        "uring_io serving a busy client until it pauses",
    )
).serve()
