"""Broken on purpose: forking with no accept pause. Out of descriptors (EMFILE), accept()
fails while the client stays queued, the listener stays readable, and select() returns
at once, again and again: the parent spins a core until a descriptor frees up."""

import forking.server as model
from common import parse_config
from forking import MODEL
from tests.broken.harness import declaration

CAUGHT_BY = ("tests/test_forking.py",)  # it runs its check against this server


class EchoServer(model.EchoServer):
    def pause_accepting(self, error: OSError) -> None:
        pass  # DEFECT: try again at once


EchoServer(
    parse_config(declaration("tests.broken.forking_spins_at_emfile", like=MODEL), "forking, spinning")
).serve()
