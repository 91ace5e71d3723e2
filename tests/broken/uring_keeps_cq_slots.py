"""Broken on purpose: uring_io with rings of the smallest size, never giving completion
slots back. It reads the CQ from a head of its own but does not store it where the
kernel looks, so once as many completions as the CQ holds have come, the kernel sees
the CQ full forever: every later completion waits in its overflow list, and no
io_uring_enter() can move it in. A small CQ under many clients shows it at once."""

from collections.abc import Iterator

import uring_io.ring
import uring_io.server as model
from common import parse_config
from tests.broken.harness import declaration
from uring_io import MODEL

CAUGHT_BY = ("tests/test_uring_io.py",)  # it runs its check against this server


class Ring(uring_io.ring.Ring):
    head = 0

    def completions(self) -> Iterator[tuple[int, int]]:
        while self.head != (tail := self.ints[self.cq_tail]):
            for position in range((tail - self.head) & uring_io.ring.U32):
                offset = self.cqes + ((self.head + position) & self.cq_mask) * uring_io.ring.CQE.size
                tag, result, _ = uring_io.ring.CQE.unpack_from(self.rings, offset)
                if tag != uring_io.ring.CANCELS:
                    del self.flights[tag]
                    yield tag, result
            self.head = tail  # DEFECT: never stored in the ring: the kernel never gets the slots back


model.Ring = Ring  # type: ignore[attr-defined]
model.SQ_ENTRIES, model.CQ_ENTRIES = 2, 4
model.EchoServer(
    parse_config(
        declaration("tests.broken.uring_keeps_cq_slots", like=MODEL),
        "uring_io never giving completion slots back",
    )
).serve()
