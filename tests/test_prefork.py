"""prefork's own failure modes: what a master owes its workers and their clients.

A worker killed is replaced, and the other workers' clients lose nothing; a stop
drains every worker; and no worker outlives its master, however the master dies.
The conformance suite sees one server; these tests look at its processes.

Each check runs against prefork, and against the broken server made for it
(tests/broken/: never_replaces_workers, kills_workers_at_stop, orphans_workers), where
it must fail.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from functools import partial

import psutil  # type: ignore[import-untyped]  # no stubs in the test extras (types-psutil)
import pytest

from tests.clients import IO_TIMEOUT, connect, connection_refused, echo, recv_exactly, served
from tests.servers import spec_for
from toolkit.process import ServerProcess, ServerSpec, wait_until

WORKERS = 2
ENOUGH_CLIENTS = 100  # the SO_REUSEPORT hash gives each worker some long before this
STOP_TIMEOUT = 5.0


def worker_pids(master: int) -> set[int]:
    return {
        child.pid for child in psutil.Process(master).children() if child.status() != psutil.STATUS_ZOMBIE
    }


def alive(pid: int) -> bool:
    with contextlib.suppress(psutil.NoSuchProcess):
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    return False


def worker_holding(master: int, sock: socket.socket) -> int | None:
    """The worker with the server side of this client's connection."""
    client = sock.getsockname()[:2]
    for worker in psutil.Process(master).children():
        with contextlib.suppress(psutil.NoSuchProcess):
            if any(c.raddr and tuple(c.raddr)[:2] == client for c in worker.net_connections(kind="tcp")):
                return int(worker.pid)
    return None


@contextlib.contextmanager
def clients_of_each_worker(server: ServerProcess) -> Iterator[dict[int, list[socket.socket]]]:
    """Served clients, by the worker that holds each, until every worker holds one."""
    by_worker: dict[int, list[socket.socket]] = {}
    with contextlib.ExitStack() as stack:
        for number in range(ENOUGH_CLIENTS):
            sock = stack.enter_context(connect(server.address))
            assert echo(sock, f"client {number}".encode()) == f"client {number}".encode()
            holder = worker_holding(server.pid, sock)
            assert holder is not None, "no worker holds a served client"
            by_worker.setdefault(holder, []).append(sock)
            if len(by_worker) == WORKERS:
                break
        assert len(by_worker) == WORKERS, f"{ENOUGH_CLIENTS} clients all went to one worker"
        yield by_worker


def lost(sock: socket.socket) -> bool:
    """Has this client's connection ended (its worker died)?"""
    try:
        sock.sendall(b"anyone?")
        return sock.recv(16) == b""
    except ConnectionError:
        return True


def a_killed_worker_is_replaced(spec: ServerSpec) -> None:
    """... and the other workers' clients, even mid-message, lose nothing."""
    with (
        ServerProcess(spec, "--workers", str(WORKERS)) as server,
        clients_of_each_worker(server) as by_worker,
    ):
        victim, survivor = sorted(by_worker)
        for sock in by_worker[survivor]:
            sock.sendall(b"sent before the kill, ")  # in flight while a sibling dies
        os.kill(victim, signal.SIGKILL)
        replaced = wait_until(
            lambda: victim not in worker_pids(server.pid) and len(worker_pids(server.pid)) == WORKERS,
            timeout=STOP_TIMEOUT,
        )
        assert replaced, f"workers after the kill: {worker_pids(server.pid)}; {victim} was killed"
        for sock in by_worker[survivor]:
            sock.sendall(b"read after it")
            assert recv_exactly(sock, 35) == b"sent before the kill, read after it"
        assert all(lost(sock) for sock in by_worker[victim]), "a dead worker's client still served"
        assert all(served(server.address) for _ in range(10)), "new clients are not served"


def a_stop_drains_every_worker(spec: ServerSpec) -> None:
    with (
        ServerProcess(spec, "--workers", str(WORKERS), "--drain-timeout", "30") as server,
        clients_of_each_worker(server) as by_worker,
    ):
        server.send_signal(signal.SIGTERM)
        # Every worker closes its listener: no one accepts new clients any more.
        assert wait_until(lambda: connection_refused(server.address), timeout=STOP_TIMEOUT)
        for worker, clients in by_worker.items():
            for sock in clients:
                message = f"still served by {worker}".encode()
                assert echo(sock, message) == message, "a client lost its worker at the stop"
                sock.close()
        left = time.monotonic()
        status = server.wait(STOP_TIMEOUT)
        assert status == 0, server.stderr_text()[-2000:]
        assert time.monotonic() - left < STOP_TIMEOUT, "the master waited out the drain time"


def no_worker_outlives_its_master(spec: ServerSpec, death: str) -> None:
    server = ServerProcess(spec, "--workers", str(WORKERS), "--drain-timeout", "30")
    workers = worker_pids(server.pid)
    try:
        # A client keeps a worker draining, so only the master's death can end it now.
        with connect(server.address) as client:
            assert len(workers) == WORKERS
            assert echo(client, b"keeps a worker busy") == b"keeps a worker busy"
            if death == "group":
                os.killpg(server.pid, signal.SIGKILL)  # as the suite ends a server it started
            else:
                server.send_signal(signal.SIGTERM)
                # Two of one signal pending at once are one: send the second once the
                # first has been taken (every process logs it).
                assert wait_until(lambda: "SIGTERM" in server.stderr_text(), timeout=IO_TIMEOUT)
                server.send_signal(signal.SIGTERM)
                assert server.wait(IO_TIMEOUT) == 128 + signal.SIGTERM
            gone = wait_until(lambda: not any(alive(pid) for pid in workers), timeout=STOP_TIMEOUT)
            assert gone, f"workers left running: {[pid for pid in workers if alive(pid)]}"
    finally:
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        server.close()


Check = Callable[[ServerSpec], None]
CHECKS: dict[str, tuple[Check, str]] = {  # name: (check, its broken server)
    "killed worker replaced": (a_killed_worker_is_replaced, "never_replaces_workers"),
    "stop drains every worker": (a_stop_drains_every_worker, "kills_workers_at_stop"),
    "no orphan, group killed": (partial(no_worker_outlives_its_master, death="group"), "orphans_workers"),
    "no orphan, second signal": (partial(no_worker_outlives_its_master, death="signal"), "orphans_workers"),
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", list(CHECKS))
def test_prefork(name: str) -> None:
    check, _ = CHECKS[name]
    check(spec_for("prefork"))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", list(CHECKS))
def test_fails_on_its_broken_server(name: str) -> None:
    check, broken = CHECKS[name]
    with pytest.raises((AssertionError, OSError)) as failure:
        check(spec_for(f"broken/{broken}"))
    print(f"broken/{broken}: {name}: {failure.value!r}"[:300])
