"""What a server process holds, measured with psutil: memory, descriptors, threads, CPU
time, connections; summed over the processes it started. The one module of toolkit
that needs a package: psutil, from the bench and test extras.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable
from pathlib import Path
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
    """CPU time (user + system) the server has used so far, by the kernel's accounting:
    every process of its tree, and the children each has reaped (a forking server's)."""
    return over_process_tree(pid, process_cpu_seconds)


def process_cpu_seconds(process: psutil.Process) -> float:
    """One process's CPU time, and its reaped children's. /proc/PID/stat counts a process's
    time in ticks of 10 ms, rounded down: a hundred busy processes each using a few ms in a
    window (forking's children) would sum to nothing. Each live thread's schedstat is exact
    to the nanosecond, but forgets the threads that have ended (blocking's, when a client
    leaves), which the ticks still count. So: whichever is larger, within a tick of the truth
    either way, and exact for a single-threaded process."""
    times = process.cpu_times()
    live_threads = 0
    with contextlib.suppress(OSError):  # the process may end meanwhile
        for task in Path(f"/proc/{process.pid}/task").iterdir():
            with contextlib.suppress(OSError, IndexError, ValueError):  # a thread may end meanwhile
                live_threads += int((task / "schedstat").read_text().split()[0])
    every_thread = float(times.user + times.system)
    return max(every_thread, live_threads / 1e9) + float(times.children_user + times.children_system)


def cpu_share(pid: int, window: float) -> float:
    """The share of one core the server used over the next `window` seconds: a fixed window
    on purpose, since what it does meanwhile (spin, or sleep) is what is measured."""
    before = server_cpu_seconds(pid)
    time.sleep(window)
    return (server_cpu_seconds(pid) - before) / window


def set_fd_limit(pid: int, soft: int) -> None:
    """Lower (or raise, up to the hard limit) a running process's RLIMIT_NOFILE: prlimit(2)."""
    _, hard = psutil.Process(pid).rlimit(psutil.RLIMIT_NOFILE)
    psutil.Process(pid).rlimit(psutil.RLIMIT_NOFILE, (soft, hard))


def child_processes(pid: int) -> int:
    """How many processes the server has started and still runs (socat forks one per client)."""
    return len(psutil.Process(pid).children(recursive=True))


def soft_fd_limit(pid: int) -> int:
    """The process's soft RLIMIT_NOFILE as its kernel enforces it: /proc/PID/limits."""
    limits = Path(f"/proc/{pid}/limits").read_text(encoding="ascii")
    [line] = [line for line in limits.splitlines() if line.startswith("Max open files")]
    return int(line.split()[3])


def kernel_queued(sock: socket.socket) -> int:
    """Bytes of this loopback connection the kernel holds, at both ends: each end's send
    queue (unsent or unacknowledged) and receive queue (not yet read), from
    /proc/net/tcp{,6}. What a client pushed, less this, is what the server process holds."""
    ends = {sock.getsockname()[1], sock.getpeername()[1]}
    queued = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text(encoding="ascii").splitlines()[1:]:
            fields = line.split()
            local, remote = (int(address.rsplit(":", 1)[1], 16) for address in fields[1:3])
            if {local, remote} == ends:
                queued += sum(int(queue, 16) for queue in fields[4].split(":"))  # tx_queue:rx_queue
    return queued
