"""Broken on purpose: threadpool with its pool sized by --max-connections, not --workers
(as `ThreadPoolExecutor(max_workers=len(clients))` would be): a thread per connection
in all but name, so the thread count, and memory with it, grows with the clients."""

import dataclasses

import threadpool.server as model
from common import parse_config
from tests.broken.harness import declaration
from threadpool import DEFAULT_WORKERS, MODEL

CAUGHT_BY = ("tests/test_threadpool.py",)  # it runs its check against this server

config = parse_config(
    declaration("tests.broken.pool_sized_by_clients", like=MODEL),
    "threadpool, a thread per client",
    workers=DEFAULT_WORKERS,
)
model.EchoServer(dataclasses.replace(config, workers=config.max_connections)).serve()  # DEFECT
