"""Broken on purpose: threadpool without EPOLLONESHOT. Level-triggered epoll reports a
socket again on every poll() while a pool thread is still reading it, so a second (and
third) thread gets the same client: two recv() calls race, their chunks join `outbuf` in
either order, and two threads send from, and cut, the same buffer."""

import select

select.EPOLLONESHOT = 0  # type: ignore[misc]  # DEFECT: the kernel no longer disarms a socket once reported

import threadpool.server as model  # noqa: E402  (after the defect: it reads select at call time)
from common import parse_config  # noqa: E402
from tests.broken.harness import declaration  # noqa: E402
from threadpool import DEFAULT_WORKERS, MODEL  # noqa: E402

CAUGHT_BY = ("1.4",)  # two threads read one socket: a large echo comes back out of order

model.EchoServer(
    parse_config(
        declaration("tests.broken.no_oneshot", like=MODEL),
        "threadpool without EPOLLONESHOT",
        workers=DEFAULT_WORKERS,
    )
).serve()
