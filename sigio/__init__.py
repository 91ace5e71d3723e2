"""sigio: one thread, the kernel queues a signal naming each socket that changed (see server.py)."""

from common.declaration import Family, Model, module_attribute

MODEL = Model(
    name="sigio",
    order=55,
    family=Family.SIGNALS,
    builds_on="epoll_mux",
    changes="the kernel queues a signal per change, naming the socket (si_fd): edge-like, and bounded",
    waits="in `sigtimedwait()` (libc, through ctypes) on signals kept blocked: O_ASYNC, F_SETSIG to SIGRTMIN",
    costs="a signal, and a syscall to take it, per event; a full queue: plain SIGIO, and every socket tried",
    picks_up="the kernel queues a signal naming its socket; sigtimedwait() takes it; then recv(), "
    "and more recv() turns until EAGAIN",
    owed="in outbuf; after a short send() the kernel queues a POLLOUT signal once the socket has room",
    needs=(
        module_attribute("fcntl", "F_SETSIG", "F_SETSIG (a queued signal that names the socket) is Linux's"),
    ),
)
