"""threadpool: an epoll thread hands ready sockets to a bounded thread pool (see server.py)."""

from common.declaration import Family, Model, module_attribute

# Threads in the pool unless --workers says otherwise. A job here never waits on a client
# (the sockets are non-blocking): it runs a recv() and a send() that cannot block. The
# syscalls release the GIL, so a few threads overlap one's syscall with another's Python;
# past that, more threads only take turns on the GIL. Four is that few, on any machine.
DEFAULT_WORKERS = 4

MODEL = Model(
    name="threadpool",
    order=52,
    family=Family.READINESS,
    builds_on="epoll_mux",
    changes="the loop only waits and dispatches: a pool of --workers threads does each ready "
    "socket's recv and send (half-sync/half-async), EPOLLONESHOT keeping one thread per socket",
    waits="the main thread in `epoll.poll()`; a pool thread in the job queue, never on a client",
    costs=f"--workers threads (default {DEFAULT_WORKERS}), whatever the number of clients; a lock, "
    "and a hand-off to another thread per ready socket",
    picks_up="epoll.poll(), in the main thread, reports the socket (EPOLLONESHOT: to one "
    "thread only); a pool thread then runs its recv()",
    owed="in outbuf; the socket is armed for EPOLLOUT, and a pool thread sends once it is writable",
    needs=(module_attribute("select", "epoll", "this is not Linux; EPOLLONESHOT is epoll's"),),
)
