"""nonblocking: one thread, non-blocking sockets, and no readiness API (see server.py)."""

from common.declaration import Family, Model

MODEL = Model(
    name="nonblocking",
    order=20,
    family=Family.POLLING,
    builds_on="blocking",
    changes="one thread tries every socket in turn and never blocks on one; it sleeps when nothing moved",
    waits="never on a socket: it tries every `accept`/`recv`/`send` in turn and sleeps 1-50 ms "
    "(or 32 empty passes) when a pass finds nothing",
    costs="a syscall per socket per pass, ready or not; CPU even when idle (a few percent of a core, "
    "held there by its back-off); "
    "extra latency after an idle spell",
    picks_up="the next pass tries recv() on every client, ready or not; a pass that finds nothing "
    "sleeps 1-50 ms",
    owed="in outbuf; every pass tries send() again, and fails with EAGAIN until the client has read",
)
