"""Broken on purpose: forking whose children take the default action for SIGINT and
SIGTERM, as fork tutorials leave them. A Ctrl-C in the terminal (SIGINT to the whole
process group), or a service manager's SIGTERM to its control group, then kills every
child at once: their clients are cut off mid-echo, with no drain."""

import signal

import forking.server as model
from common import parse_config
from forking import MODEL
from tests.broken.harness import declaration

CAUGHT_BY = ("tests/test_forking.py",)  # it runs its check against this server

# DEFECT: what the child means to ignore, it takes the default action for: it dies.
signal.SIG_IGN = signal.SIG_DFL  # type: ignore[misc]

model.EchoServer(
    parse_config(declaration("tests.broken.children_die_on_ctrl_c", like=MODEL), "forking, Ctrl-C kills")
).serve()
