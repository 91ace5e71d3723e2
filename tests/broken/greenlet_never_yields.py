"""Broken on purpose: gevent_io with the handler gevent's documentation shows (recv,
then sendall, in a loop). A greenlet switches only where a call would block; a client
that streams as fast as it reads never makes one block, so its greenlet keeps the
thread and every other client waits until the stream pauses."""

import contextlib

import gevent_io.server as model
from common import READ_SIZE, parse_config
from gevent_io import MODEL
from tests.broken.harness import declaration

CAUGHT_BY = ("tests/test_gevent_io.py",)


class EchoServer(model.EchoServer):
    def serve_client(self, client: model.Client) -> None:
        with contextlib.suppress(OSError):
            while data := client.sock.recv(READ_SIZE):
                client.sock.sendall(data)  # DEFECT: never yields while data keeps coming
        self.close_client(client)


if __name__ == "__main__":  # tests/test_gevent_io.py imports the class alone
    EchoServer(
        parse_config(
            declaration("tests.broken.greenlet_never_yields", like=MODEL), "gevent_io that never yields"
        )
    ).serve()
