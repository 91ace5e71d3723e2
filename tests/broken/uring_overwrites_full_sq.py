"""Broken on purpose: uring_io with rings of the smallest size, trusting its submission
queue to have room. A pass that prepares more requests than the SQ holds writes the
new ones over those not yet submitted: the kernel then reads the newer SQE twice and
the older never, so one request is lost and another completes twice, which the server
does not survive (its own record of requests in flight no longer matches)."""

import uring_io.ring
import uring_io.server as model
from common import parse_config
from tests.broken.harness import declaration
from uring_io import MODEL

CAUGHT_BY = ("tests/test_uring_io.py",)  # it runs its check against this server


class Ring(uring_io.ring.Ring):
    def enter(self, wait_for: int, timeout: float | None) -> None:
        if wait_for == 0 and timeout is None:
            return  # DEFECT: the SQ is full, and this was to submit it: the tail runs on, over queued SQEs
        super().enter(wait_for, timeout)


model.Ring = Ring  # type: ignore[attr-defined]
model.SQ_ENTRIES, model.CQ_ENTRIES = 2, 4
model.EchoServer(
    parse_config(
        declaration("tests.broken.uring_overwrites_full_sq", like=MODEL),
        "uring_io overwriting its full submission queue",
    )
).serve()
