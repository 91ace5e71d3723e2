"""gevent_io: blocking-style code, a greenlet per connection, on gevent's sockets
(see server.py)."""

from common.declaration import Family, Model, package

MODEL = Model(
    name="gevent_io",
    order=65,
    family=Family.COROUTINES,
    builds_on="blocking",
    changes="blocking's code per client, on gevent sockets: a greenlet per client instead of a "
    "thread, and gevent's hub (one epoll loop) instead of the kernel's scheduler",
    waits="each greenlet in `recv()` / `send()`, which switch to gevent's hub; the hub waits in "
    "libev's `epoll_wait()` for every socket at once",
    costs="a greenlet (a few KiB) per connection, one thread; a greenlet that never blocks stalls "
    "every client",
    picks_up="the hub's epoll_wait() reports it; the hub switches to the greenlet waiting in recv()",
    owed="in that greenlet's owed: its send() switches to the hub until the socket is writable, "
    "and the greenlet, serving no one else, waits with it",
    deviations={
        "8.8": "a greenlet waiting in send() cannot also read: it owes one read at most (64 KiB, "
        "READ_SIZE), so a --buffer-size above that bounds nothing more (measured: 19 KiB held "
        "at --buffer-size 8 MiB)",
    },
    needs=(package("gevent", "pip install '.[gevent]'"),),
)
