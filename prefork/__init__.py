"""prefork: a master process and N worker processes, each running another model's loop
(see server.py)."""

import os

import epoll_mux
from common.declaration import Family, Model, module_attribute

DEFAULT_LOOP = epoll_mux.MODEL  # the loop each worker runs unless --model says

# Each worker is a whole loop, with its own ConnectionLimit and its own listener; they
# share no counter (as nginx's worker_connections, which is per worker) and no queue.
PER_WORKER_LIMIT = (
    "each worker enforces --max-connections on its own clients: N workers hold up to N times it"
)
MANY_WORKERS = {
    "8.1": PER_WORKER_LIMIT + " (measured, 2 workers: a 4th client served at --max-connections 3)",
    "8.6": PER_WORKER_LIMIT + " (measured, 2 workers: a 2nd client served at --max-connections 1)",
    "8.7": "each worker listens on a socket of its own, with its own queue of --backlog, and the case "
    "freezes only the master: N queues complete about N x (backlog + 1) handshakes at once "
    "(measured, 2 workers: 8 or 9 of 20 at --backlog 3, in 6 runs)",
}

MODEL = Model(
    name="prefork",
    order=13,
    family=Family.PER_CONNECTION,
    builds_on="epoll_mux",
    changes="N processes, each an epoll_mux loop on its own SO_REUSEPORT listener, under a master "
    "that only supervises",
    waits="each worker in its loop's wait (epoll by default); the master in `sigwaitinfo()`, for "
    "a worker's exit (SIGCHLD) or a stop signal",
    costs="a process per worker (its own interpreter and memory); the limits hold per worker, "
    "not for the server",
    picks_up="the worker the kernel's SO_REUSEPORT hash chose; in it, its loop's wait (epoll.poll()), "
    "then recv()",
    owed="in that worker's loop: outbuf, with EPOLLOUT watched until the socket is writable",
    deviations=MANY_WORKERS if (os.cpu_count() or 1) > 1 else {},  # --workers: one per CPU
    needs=(
        module_attribute("socket", "SO_REUSEPORT", "this system has no SO_REUSEPORT"),
        *DEFAULT_LOOP.needs,
    ),
)
