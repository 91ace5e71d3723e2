"""threadpool's own failure modes, each run against threadpool and against a broken
server made to fail it (an xfail that must fail: a check that cannot fail is a defect).

- The bound: however many clients, the server runs --workers threads and a few more,
  never a thread per connection.
- Clients beyond the workers: with every pool thread's client connected and idle, one
  more client is still served at once (the pool never waits on a client).
"""

from __future__ import annotations

from contextlib import ExitStack

import pytest

from tests.clients import IO_TIMEOUT, connect, echo, echo_on_each, open_clients
from tests.servers import spec_for
from toolkit.measure import server_threads
from toolkit.process import ServerProcess

pytestmark = pytest.mark.timeout(60)

WORKERS = 4
CLIENTS = 200
OTHER_THREADS = 1  # the main thread, which waits in epoll.poll()


def against(broken: str, defect: str) -> list[object]:
    """threadpool, which must pass; and the broken server, which must fail."""
    return [
        "threadpool",
        pytest.param(f"broken/{broken}", marks=pytest.mark.xfail(strict=True, reason=defect)),
    ]


@pytest.mark.parametrize("name", against("pool_sized_by_clients", "a thread per connection, pooled"))
def test_threads_stay_bounded_by_workers(name: str) -> None:
    with ServerProcess(spec_for(name), "--workers", str(WORKERS)) as server:
        clients = open_clients(server.address, CLIENTS)
        try:
            echo_on_each(clients)  # all of them at once, a second time
            threads = server_threads(server.pid)
        finally:
            for sock in clients:
                sock.close()
    assert threads <= WORKERS + OTHER_THREADS, f"{threads} threads for {CLIENTS} clients, --workers {WORKERS}"


@pytest.mark.parametrize("name", against("pool_per_connection", "a pool thread per client, start to finish"))
def test_a_client_beyond_the_workers_is_served(name: str) -> None:
    with ServerProcess(spec_for(name), "--workers", str(WORKERS)) as server, ExitStack() as stack:
        for number in range(WORKERS):  # each served once, then idle: connected, silent
            idle = stack.enter_context(connect(server.address))
            assert echo(idle, f"idle {number}".encode()) == f"idle {number}".encode()
        with connect(server.address) as newcomer:
            try:
                assert echo(newcomer, b"one too many?") == b"one too many?"
            except TimeoutError:
                pytest.fail(f"no echo within {IO_TIMEOUT}s while {WORKERS} idle clients held the workers")
