"""Broken on purpose: prefork whose workers do not ask to die with their master
(no PR_SET_PDEATHSIG). Each worker runs in a process group of its own, so killing the
master's group, or the master exiting at a second signal, leaves them serving on the
port as orphans."""

import os

import prefork.server as model
from common import parse_config
from prefork import DEFAULT_LOOP, MODEL
from tests.broken.harness import declaration

CAUGHT_BY = ("tests/test_prefork.py",)

model.die_with_parent = lambda parent: None  # type: ignore[attr-defined]  # DEFECT: the kernel is never asked


EchoServer = model.EchoServer

EchoServer(
    parse_config(
        declaration("tests.broken.orphans_workers", like=MODEL),
        "prefork whose workers outlive their master",
        workers=os.cpu_count() or 1,
        loop_model=DEFAULT_LOOP.name,
    )
).serve()
