"""sigio: a full real-time signal queue loses nothing.

Linux queues one real-time signal per socket event, at most RLIMIT_SIGPENDING for the
user at once, root included: a real-time signal from the kernel is never allowed past
the limit (kernel/signal.c, __send_signal_locked: override_rlimit is 0 for sig >=
SIGRTMIN). Past it, fcntl's F_SETSIG sends plain SIGIO instead, with no descriptor, and
the server must try every socket. This test makes that happen for sure: it stops the
server (SIGSTOP), lets CLIENTS clients send at once, checks that SIGIO is pending (the
queue did overflow), lets it run again, and wants every byte echoed.
"""

from __future__ import annotations

import resource
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.clients import echo_on_each, open_clients
from tests.servers import frozen, raised_fd_limit, spec_for
from toolkit.process import ServerProcess, wait_until

CLIENTS = 200
SIGPENDING = 8  # queued signals allowed: far fewer than CLIENTS events at once
IGNORES_SIGIO = "sigio_ignores_overflow"  # tests/broken/: drops plain SIGIO
ECHO_TIMEOUT = 5.0  # a dropped event is never signalled again: waiting longer changes nothing


def sigio_pending(pid: int) -> bool:
    """Is plain SIGIO pending for the process (its bit in /proc/PID/status's ShdPnd)?"""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("ShdPnd:"):
            return bool(int(line.split()[1], 16) & 1 << (signal.SIGIO - 1))
    return False


def signal_state(pid: int) -> str:
    """The lines of /proc/PID/status about the process's state and its signals."""
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return ", ".join(line for line in lines if line.startswith(("State", "SigQ", "ShdPnd")))


def assert_a_full_queue_loses_nothing(name: str) -> None:
    """Every client sends while the server is stopped, then it runs: every one must get
    its echo, and SIGIO must have been pending (or the test tested nothing)."""
    with (
        raised_fd_limit(CLIENTS + 100),
        ServerProcess(spec_for(name)) as server,
        ThreadPoolExecutor(1) as pool,
    ):
        clients = open_clients(server.address, CLIENTS)  # each served once, then silent
        try:
            resource.prlimit(server.pid, resource.RLIMIT_SIGPENDING, (SIGPENDING, SIGPENDING))
            with frozen(server):
                # SIGSTOP takes effect when the server next runs: sent before, the burst
                # may race it and be taken as it comes, never filling the queue.
                assert wait_until(lambda: "T (stopped)" in signal_state(server.pid), timeout=10.0)
                burst = pool.submit(echo_on_each, clients, timeout=ECHO_TIMEOUT)
                overflowed = wait_until(lambda: sigio_pending(server.pid), timeout=10.0)
                state = signal_state(server.pid)
            assert overflowed, f"{CLIENTS} events never overflowed a queue of {SIGPENDING}: {state}"
            echoed, turned_away = burst.result(timeout=ECHO_TIMEOUT + 10.0)  # AssertionError if not all
            assert (echoed, turned_away) == (CLIENTS, 0)
            assert server.running(), server.stderr_text()[-2000:]
        finally:
            for sock in clients:
                sock.close()


@pytest.mark.timeout(60)
def test_a_full_signal_queue_loses_nothing() -> None:
    assert_a_full_queue_loses_nothing("sigio")


@pytest.mark.timeout(60)
def test_a_server_that_ignores_sigio_is_caught() -> None:
    with pytest.raises(AssertionError, match="clients got no echo") as caught:
        assert_a_full_queue_loses_nothing(f"broken/{IGNORES_SIGIO}")
    print(f"broken/{IGNORES_SIGIO}: {caught.value}")
