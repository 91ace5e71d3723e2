"""Broken on purpose: forking whose children do not die with their parent (no
PR_SET_PDEATHSIG). When the parent exits at once (a second stop signal, a SIGKILL, a
crash) its children are re-parented to init and serve on: orphans nobody will stop,
holding their clients, and the port's connections, until they leave."""

import forking.server as model
from common import parse_config
from forking import MODEL
from tests.broken.harness import declaration

CAUGHT_BY = ("tests/test_forking.py",)  # it runs its check against this server

model.die_with_parent = lambda parent: None  # type: ignore[attr-defined]  # DEFECT: outlives its parent

model.EchoServer(
    parse_config(declaration("tests.broken.no_pdeathsig", like=MODEL), "forking, orphans")
).serve()
