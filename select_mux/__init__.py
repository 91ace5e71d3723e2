"""select_mux: one thread, every socket watched through select.select() (see server.py)."""

from common.declaration import Family, Model

# select() cannot watch a descriptor numbered FD_SETSIZE or above: the size of the C
# library's fd_set, fixed when it was built. server.py turns such clients away.
FD_SETSIZE = 1024

MODEL = Model(
    name="select_mux",
    order=30,
    family=Family.READINESS,
    builds_on="nonblocking",
    changes="the kernel says which sockets are ready, so the loop sleeps until one is",
    waits="in `select.select()` on a read set and a write set rebuilt every pass",
    costs=f"O(all sockets) per wakeup; cannot watch descriptors ≥ {FD_SETSIZE} (refuses such clients)",
    connection_cap=FD_SETSIZE,
)
