"""poll_mux: one thread, every socket watched through select.poll() (see server.py)."""

from common.declaration import Family, Model

MODEL = Model(
    name="poll_mux",
    order=35,
    family=Family.READINESS,
    builds_on="select_mux",
    changes="an (fd, events) array replaces the fd_set bitmaps: any descriptor number; still O(all) per call",
    waits="in `select.poll().poll()`: the whole (fd, events) array handed to the kernel on every call",
    costs="O(all sockets) per wakeup, as select_mux; no FD_SETSIZE limit",
    picks_up="poll() over the whole (fd, events) array returns its descriptor with POLLIN; then recv()",
    owed="in outbuf; modify() adds POLLOUT, and poll() waits until the socket is writable",
)
