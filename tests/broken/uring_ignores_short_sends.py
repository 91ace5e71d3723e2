"""Broken on purpose: uring_io taking every send completion for the whole buffer. A
send to a client whose receive window is small completes with fewer bytes than asked
(io_uring, like send(), reports what it took); the rest is dropped, so the echo has a
hole in it."""

import uring_io.server as model
from common import parse_config
from tests.broken.harness import declaration
from uring_io import MODEL

CAUGHT_BY = ("tests/test_uring_io.py",)  # it runs its check against this server


class EchoServer(model.EchoServer):
    def sent(self, client: model.Client, result: int) -> None:
        if result > 0 and client.sending is not None:
            result = len(client.sending)  # DEFECT: as if the kernel always took it all
        super().sent(client, result)


EchoServer(
    parse_config(
        declaration("tests.broken.uring_ignores_short_sends", like=MODEL),
        "uring_io ignoring short sends",
    )
).serve()
