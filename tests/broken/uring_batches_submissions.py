"""Broken on purpose: uring_io saving syscalls by waiting a moment for more work before
it submits. A pass's requests (the echo's send among them) then wait in the SQ until
another completion comes or the batching window ends: each echo of a lone client in
lock step is late by the whole window."""

import uring_io.ring
import uring_io.server as model
from common import earliest, parse_config
from tests.broken.harness import declaration
from uring_io import MODEL

CAUGHT_BY = ("tests/test_uring_io.py",)  # it runs its check against this server

BATCH_WINDOW = 1.0  # seconds


class Ring(uring_io.ring.Ring):
    def enter(self, wait_for: int, timeout: float | None) -> None:
        if wait_for and (self.tail - self.ints[self.sq_head]) & uring_io.ring.U32 < 8:
            # DEFECT: wait first, submit after: the queued requests sit out the window
            saved, self.tail = self.tail, self.ints[self.sq_head]
            super().enter(wait_for, earliest(timeout, BATCH_WINDOW))
            self.tail = saved
            wait_for = 0
        super().enter(wait_for, timeout)


model.Ring = Ring  # type: ignore[attr-defined]
model.EchoServer(
    parse_config(
        declaration("tests.broken.uring_batches_submissions", like=MODEL),
        "uring_io waiting for a batch before it submits",
    )
).serve()
