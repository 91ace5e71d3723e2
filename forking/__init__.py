"""forking: a process per connection, os.fork() after accept() (see server.py)."""

import sys

from common.declaration import Family, Model, Need


def linux() -> str | None:
    return None if sys.platform.startswith("linux") else "this is not Linux (prctl)"


MODEL = Model(
    name="forking",
    order=12,
    family=Family.PER_CONNECTION,
    builds_on="blocking",
    changes="a process per client instead of a thread: no GIL, no shared memory, and a crash "
    "ends one client; the parent only accepts, forks and reaps",
    waits="the parent in `selector.select()` on the listener and a signal wakeup (stop, SIGCHLD); "
    "each child blocked in `recv()` / `sendall()`",
    costs="a process per connection: a fork() each, and the pages each child's interpreter "
    "writes (refcounts) copied from the parent",
    needs=(Need("Linux's prctl(PR_SET_PDEATHSIG)", linux),),
)
