"""What a server process holds, measured with psutil: memory, descriptors, threads, CPU
time, connections; summed over the processes it started. The one module of toolkit
that needs a package: psutil, from the bench and test extras.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TypeVar

import psutil  # type: ignore[import-untyped]  # no stubs in the test extras (types-psutil)

from toolkit.process import Address

# How long the server may take to notice that the last clients have gone.
SETTLE = 5.0
Number = TypeVar("Number", int, float)


def server_holds_connection(pid: int, client_address: Address) -> bool:
    """Does the server still have a socket connected to this client address?"""

    def connections_to_client(process: psutil.Process) -> int:
        return sum(
            1
            for connection in process.net_connections(kind="tcp")
            if connection.raddr and tuple(connection.raddr)[:2] == client_address
        )

    return over_process_tree(pid, connections_to_client) > 0


def over_process_tree(pid: int, measure: Callable[[psutil.Process], Number]) -> Number:
    """A measure summed over the process and every process it started: a server that
    forks a child per client (socat fork) holds memory and sockets in all of them."""
    server = psutil.Process(pid)  # NoSuchProcess if the server itself has died
    total = measure(server)
    for child in server.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):  # exited meanwhile: it holds nothing now
            total += measure(child)
    return total


def server_rss(pid: int) -> int:
    """Resident memory of the server, in bytes."""
    return over_process_tree(pid, lambda process: int(process.memory_info().rss))


def server_fds(pid: int) -> int:
    """Open file descriptors of the server."""
    return over_process_tree(pid, lambda process: int(process.num_fds()))


def server_threads(pid: int) -> int:
    """Threads of the server."""
    return over_process_tree(pid, lambda process: int(process.num_threads()))


def server_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the server has used so far, by its own accounting."""
    return over_process_tree(pid, lambda process: float(sum(process.cpu_times()[:2])))


def set_fd_limit(pid: int, soft: int) -> None:
    """Lower (or raise, up to the hard limit) a running process's RLIMIT_NOFILE: prlimit(2)."""
    _, hard = psutil.Process(pid).rlimit(psutil.RLIMIT_NOFILE)
    psutil.Process(pid).rlimit(psutil.RLIMIT_NOFILE, (soft, hard))
