"""Broken on purpose: prefork whose master ends its workers with SIGKILL at a stop,
instead of forwarding the SIGTERM: no worker drains, and every open client is cut off
mid-conversation while the master exits 0 as if all went well."""

import os
import signal

import prefork.server as model
from common import parse_config
from prefork import DEFAULT_LOOP, MODEL
from tests.broken.harness import declaration

CAUGHT_BY = ("tests/test_prefork.py",)


class EchoServer(model.EchoServer):
    def stop_accepting(self) -> None:
        for pid in self.workers:
            os.kill(pid, signal.SIGKILL)  # DEFECT: no drain


EchoServer(
    parse_config(
        declaration("tests.broken.kills_workers_at_stop", like=MODEL),
        "prefork that kills its workers at a stop",
        workers=os.cpu_count() or 1,
        loop_model=DEFAULT_LOOP.name,
    )
).serve()
