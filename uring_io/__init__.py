"""uring_io: one thread, completion IO through Linux's io_uring (see server.py)."""

from common.declaration import Family, Model, Need
from uring_io.ring import missing

MODEL = Model(
    name="uring_io",
    order=57,
    family=Family.COMPLETION,
    # epoll_mux is the same single-threaded loop over the same per-client state; only
    # the question changes: "which socket is ready?" becomes "which request is done?".
    builds_on="epoll_mux",
    changes="the kernel does each accept, recv and send, then reports it done: requests, not readiness",
    waits="in `io_uring_enter()`, which submits the pass's requests and waits for a completion",
    costs="one syscall per pass, not per operation; a recv buffer lent per client; Linux 5.11+, x86-64",
    needs=(Need("io_uring", missing),),
)
