"""select_mux: one thread, every socket watched through select.select() (see server.py)."""

from common.declaration import Family, Model

# select() cannot watch a descriptor numbered FD_SETSIZE or above: the size of the C
# library's fd_set, fixed when it was built. server.py turns such clients away.
FD_SETSIZE = 1024
# Descriptors 0-1,023 fit; stdin, stdout, stderr, the listener and the stop signal's
# socket pair take six of them, so at most 1,018 are left for clients.
CLIENT_CAP = FD_SETSIZE - 6

MODEL = Model(
    name="select_mux",
    order=30,
    family=Family.READINESS,
    builds_on="nonblocking",
    changes="the kernel says which sockets are ready, so the loop sleeps until one is",
    waits="in `select.select()` on a read set and a write set rebuilt every pass",
    costs=f"O(all sockets) per wakeup; cannot watch a descriptor numbered {FD_SETSIZE:,} (FD_SETSIZE) "
    f"or above, so at most {CLIENT_CAP:,} clients (refuses the rest)",
    picks_up="select() over a read set rebuilt every pass says it is readable; then recv()",
    owed="in outbuf; the socket joins the write set, and select() waits until it is writable",
    connection_cap=CLIENT_CAP,
    cap_reason="select()'s FD_SETSIZE",
)
