"""blocking: blocking sockets, one thread per connection (see server.py)."""

from common.declaration import Family, Model

MODEL = Model(
    name="blocking",
    order=10,
    family=Family.PER_CONNECTION,
    builds_on=None,
    changes="the starting point: every call blocks, and a thread per client makes that concurrent",
    waits="a thread per client, blocked in `recv()` / `sendall()`; the main thread blocks in `accept()`",
    costs="a thread (stack, scheduler entry) per connection; the GIL means threads overlap waiting, not work",
)
