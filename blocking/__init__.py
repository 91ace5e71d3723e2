"""blocking: blocking sockets, one thread per connection (see server.py)."""

from common.declaration import Family, Model

MODEL = Model(
    name="blocking",
    order=10,
    family=Family.PER_CONNECTION,
    builds_on=None,
    changes="the starting point: every call blocks, and a thread per client makes that concurrent",
    waits="a thread per client, blocked in `recv()` / `send()`; the main thread blocks in `accept()`",
    costs="a thread (stack, scheduler entry) per connection; the GIL means threads overlap waiting, not work",
    picks_up="its own thread, blocked in recv() until the byte arrives",
    owed="in that thread's data: its send() loop blocks until the kernel takes it all, and "
    "the thread, serving no one else, waits with it",
    deviations={
        "8.8": "a thread blocked in send() cannot also read: it owes one read at most (64 KiB, "
        "READ_SIZE), so a --buffer-size above that bounds nothing more",
    },
)
