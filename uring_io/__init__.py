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
    picks_up="nobody waits for it: a recv handed to the kernel earlier completes with the byte in "
    "our buffer, and io_uring_enter() returns that completion",
    owed="in outbuf and in a send lent to the kernel, done once the send buffer took it; at the "
    "cap no recv is asked",
    needs=(Need("io_uring", missing),),
)
