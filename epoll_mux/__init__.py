"""epoll_mux: one thread, Linux's epoll used directly (see server.py)."""

from common.declaration import Family, Model, module_attribute

MODEL = Model(
    name="epoll_mux",
    order=50,
    family=Family.READINESS,
    builds_on="selectors_mux",
    changes="only what DefaultSelector hid: the raw EPOLLIN/EPOLLOUT flags and the descriptor table",
    waits="in `select.epoll().poll()`, level-triggered, raw `EPOLLIN`/`EPOLLOUT`",
    costs="as `selectors_mux`, minus the wrapper; Linux only",
    picks_up="epoll.poll() returns its descriptor with EPOLLIN; then recv()",
    owed="in outbuf; epoll_ctl() adds EPOLLOUT until the socket is writable",
    needs=(module_attribute("select", "epoll", "this is not Linux; selectors_mux runs anywhere"),),
)
