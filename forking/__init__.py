"""forking: a process per connection, os.fork() after accept() (see server.py)."""

import sys

from common.declaration import Family, Model, Need


def linux() -> str | None:
    return None if sys.platform.startswith("linux") else "this is not Linux (prctl)"


# Each child costs about 1.4 MiB of private memory (the pages its interpreter writes), and
# fork() slows as children accumulate: 10,000 held here took 150 s and 15 GiB of memory.
# So the server never runs more children than this, whatever --max-connections says.
MAX_CHILDREN = 2000

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
    picks_up="its own child process, blocked in recv() until the byte arrives; the parent "
    "only waits in select() for the next client",
    owed="in that child's data: its send() loop blocks until the kernel takes it all, and the "
    "child, serving no one else, waits with it",
    needs=(Need("Linux's prctl(PR_SET_PDEATHSIG)", linux),),
    connection_cap=MAX_CHILDREN,
    cap_reason="it never runs more children: fork() slows as they accumulate",
    deviations={
        "8.8": "a child blocked in send() cannot also read: it owes one read at most (64 KiB, "
        "READ_SIZE), so a --buffer-size above that bounds nothing more",
        "10.1": "a process per connection: each child's interpreter writes about 1.4 MiB of its "
        "own pages (USS), and the process tree's RSS counts 13 MiB a child, not 64 KiB",
    },
)
