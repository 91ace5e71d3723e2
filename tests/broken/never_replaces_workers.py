"""Broken on purpose: prefork whose master reaps a dead worker and starts no other. The
server goes on with one worker fewer, and serves every client still, so no case of the
conformance suite sees it: each killed worker leaves the machine a core less used."""

import os

import prefork.server as model
from common import parse_config
from prefork import DEFAULT_LOOP, MODEL
from tests.broken.harness import declaration

CAUGHT_BY = ("tests/test_prefork.py",)


class EchoServer(model.EchoServer):
    def reap(self) -> None:
        while self.workers:
            pid, _ = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                return
            self.workers.discard(pid)  # DEFECT: no start_worker() in its place


EchoServer(
    parse_config(
        declaration("tests.broken.never_replaces_workers", like=MODEL),
        "prefork that never replaces a dead worker",
        workers=os.cpu_count() or 1,
        loop_model=DEFAULT_LOOP.name,
    )
).serve()
