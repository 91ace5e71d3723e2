"""Broken on purpose: forking without waitpid(). SIGCHLD still wakes the parent, but
nothing collects the exited child, so each one stays a zombie (a process table entry,
its pid, its exit status) for as long as the parent lives, and --max-connections,
counting them as live, turns every client away once enough have come and gone."""

import forking.server as model
from common import parse_config
from forking import MODEL
from tests.broken.harness import declaration

CAUGHT_BY = ("tests/test_forking.py",)  # it runs its check against this server


class EchoServer(model.EchoServer):
    def reap(self) -> None:
        pass  # DEFECT: no waitpid(): every child that exits stays a zombie


EchoServer(
    parse_config(declaration("tests.broken.never_reaps", like=MODEL), "forking, never reaping")
).serve()
