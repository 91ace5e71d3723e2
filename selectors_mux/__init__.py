"""selectors_mux: one thread, DefaultSelector (epoll, kqueue…) (see server.py)."""

from common.declaration import Family, Model

MODEL = Model(
    name="selectors_mux",
    order=40,
    family=Family.READINESS,
    builds_on="select_mux",
    changes="the interest set lives in the kernel between calls, so a wakeup costs O(ready sockets)",
    waits="in `selectors.DefaultSelector().select()` (epoll, kqueue…); interest kept in the kernel",
    costs="O(ready sockets) per wakeup; a syscall whenever a client's interest changes",
    picks_up="selector.select() (epoll_wait) returns its key with EVENT_READ; then recv()",
    owed="in outbuf; modify() adds EVENT_WRITE, kept in the kernel, until the socket is writable",
)
