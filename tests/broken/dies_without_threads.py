"""Broken on purpose: blocking as it was, starting each client's thread with nothing to
catch the RuntimeError ("can't start new thread") that comes under a pids cgroup,
RLIMIT_NPROC, or a lowered RLIMIT_AS. The accept loop dies of it, the process exits,
and every client it was serving loses its connection."""

import _thread
import sys

import blocking.server as model
from blocking import MODEL
from common import parse_config
from tests.broken.harness import declaration

CAUGHT_BY = ("9.7",)


class EchoServer(model.EchoServer):
    def accept_client(self) -> None:
        try:
            sock, address = self.wait_for_client()
        except (model.StopAccepting, OSError):
            return
        self.clients[sock] = client = model.Client(sock, address)
        _thread.start_new_thread(self.serve_client, (client,))  # DEFECT: a RuntimeError ends the server


sys.setswitchinterval(model.SWITCH_INTERVAL)
EchoServer(
    parse_config(
        declaration("tests.broken.dies_without_threads", like=MODEL),
        "blocking, felled by one thread",
    )
).serve()
