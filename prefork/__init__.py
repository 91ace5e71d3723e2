"""prefork: a master process and N worker processes, each running another model's loop
(see server.py)."""

import epoll_mux
from common.declaration import Family, Model, module_attribute

DEFAULT_LOOP = epoll_mux.MODEL  # the loop each worker runs unless --model says

MODEL = Model(
    name="prefork",
    order=13,
    family=Family.PER_CONNECTION,
    builds_on="epoll_mux",
    changes="N processes, each an epoll_mux loop on its own SO_REUSEPORT listener, under a master "
    "that only supervises",
    waits="each worker in its loop's wait (epoll by default); the master in select() on its "
    "signal wakeup socket, for a worker's exit or a stop",
    costs="a process per worker (its own interpreter and memory); the limits hold per worker, "
    "not for the server",
    needs=(
        module_attribute("socket", "SO_REUSEPORT", "this system has no SO_REUSEPORT"),
        *DEFAULT_LOOP.needs,
    ),
)
