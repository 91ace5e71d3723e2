"""forking's own failure modes, each run against forking and against a broken server
made to fail it (an xfail that must fail: a check that cannot fail is a defect).

- No zombies: every child that exited is reaped (/proc, read by psutil).
- A child killed ends only its own client: that client sees its connection end (the
  parent holds no copy of its socket), the others are still served.
- No orphan: when the parent dies at once (a second stop signal, SIGKILL), every child
  dies too, though nothing in it ran (PR_SET_PDEATHSIG).
- A Ctrl-C reaches the whole process group: the children go on serving through the
  drain, as the parent decides.
- Out of descriptors, the parent pauses accepting. Conformance case 9.1 cannot set this
  up from outside (the parent holds a client's socket only until it has forked), so
  this lowers the parent's own limit to the descriptors it holds.
"""

from __future__ import annotations

import os
import signal
import socket
from contextlib import ExitStack

import psutil  # type: ignore[import-untyped]  # no stubs in the test extras (types-psutil)
import pytest

from tests.clients import IO_TIMEOUT, connect_served, connection_refused, echo, recv_until_eof
from tests.servers import spec_for
from toolkit.measure import cpu_share, set_fd_limit
from toolkit.process import ServerProcess, wait_until

pytestmark = pytest.mark.timeout(60)

CLIENTS = 100
HELD = 3
PROMPT = 2.0  # how long a loaded machine may take to end or reap a process


def against(broken: str, defect: str) -> list[object]:
    """forking, which must pass; and the broken server, which must fail."""
    return ["forking", pytest.param(f"broken/{broken}", marks=pytest.mark.xfail(strict=True, reason=defect))]


def zombies(pid: int) -> list[psutil.Process]:
    return [child for child in psutil.Process(pid).children() if child.status() == psutil.STATUS_ZOMBIE]


@pytest.mark.parametrize("name", against("never_reaps", "never calls waitpid()"))
def test_no_zombies(name: str) -> None:
    with ServerProcess(spec_for(name)) as server:
        for number in range(CLIENTS):
            with connect_served(server.address, number):
                pass
        left = wait_until(lambda: not zombies(server.pid), timeout=PROMPT)
        assert left, f"{len(zombies(server.pid))} zombies after {CLIENTS} clients came and went"


def child_serving(pid: int, client: socket.socket) -> psutil.Process:
    """The child of pid holding the other end of this client's connection."""
    address = client.getsockname()[:2]
    for child in psutil.Process(pid).children():
        if any(tuple(c.raddr)[:2] == address for c in child.net_connections("tcp") if c.raddr):
            return child
    raise AssertionError(f"no child of {pid} serves {address}")


def ended(sock: socket.socket) -> bool:
    """Does the server end this connection (FIN or RST) within IO_TIMEOUT?"""
    sock.settimeout(IO_TIMEOUT)
    try:
        return sock.recv(16) == b""
    except ConnectionError:
        return True
    except TimeoutError:
        return False


@pytest.mark.parametrize("name", against("keeps_client_copy", "the parent keeps a copy of each socket"))
def test_a_child_killed_ends_only_its_client(name: str) -> None:
    with ServerProcess(spec_for(name)) as server, ExitStack() as stack:
        victim, *others = (stack.enter_context(connect_served(server.address, n)) for n in range(HELD))
        child_serving(server.pid, victim).kill()  # SIGKILL: it runs no code, closes nothing itself
        assert ended(victim), "the killed child's client was never told: someone holds its socket"
        for number, sock in enumerate(others):
            assert echo(sock, f"still served {number}".encode()) == f"still served {number}".encode()
        with connect_served(server.address, HELD):
            pass  # and new clients are
        assert server.running()


def second_signal(server: ServerProcess) -> None:
    server.send_signal(signal.SIGTERM)
    assert wait_until(lambda: connection_refused(server.address), timeout=PROMPT), "listener still open"
    server.send_signal(signal.SIGTERM)  # exits at once, with os._exit(): no cleanup runs


def sigkill(server: ServerProcess) -> None:
    server.process.kill()


@pytest.mark.parametrize("name", against("no_pdeathsig", "children outlive their parent"))
@pytest.mark.parametrize("death", [second_signal, sigkill], ids=["second-signal", "SIGKILL"])
def test_no_orphan_when_the_parent_dies_at_once(name: str, death: object) -> None:
    with ServerProcess(spec_for(name), "--drain-timeout", "60") as server, ExitStack() as stack:
        clients = [stack.enter_context(connect_served(server.address, n)) for n in range(HELD)]
        children = psutil.Process(server.pid).children()
        assert len(children) == HELD
        death(server)  # type: ignore[operator]
        server.wait(PROMPT)
        _, alive = psutil.wait_procs(children, timeout=PROMPT)
        assert not alive, f"{len(alive)} of {HELD} children outlived their parent: orphans"
        assert all(ended(sock) for sock in clients)


@pytest.mark.parametrize("name", against("children_die_on_ctrl_c", "children die of SIGINT"))
def test_ctrl_c_to_the_process_group_drains(name: str) -> None:
    with ServerProcess(spec_for(name), "--drain-timeout", "60") as server:
        with connect_served(server.address, 0) as sock:
            os.killpg(server.pid, signal.SIGINT)  # as a terminal does: the whole group
            assert wait_until(lambda: connection_refused(server.address), timeout=PROMPT)
            assert echo(sock, b"during the drain") == b"during the drain", "cut off by Ctrl-C"
            sock.shutdown(socket.SHUT_WR)
            assert recv_until_eof(sock) == b""
        assert server.wait(PROMPT) == 0, server.stderr_text()


CPU_WINDOW = 1.0
MAX_CPU_SHARE = 0.2  # of one core; a parent retrying accept() at once uses all of it


@pytest.mark.parametrize("name", against("forking_spins_at_emfile", "retries accept() at once"))
def test_parent_out_of_descriptors_pauses(name: str) -> None:
    with ServerProcess(spec_for(name)) as server:
        with connect_served(server.address, 0):
            pass  # warmed up; now the parent holds only its own descriptors
        parent = psutil.Process(server.pid)
        set_fd_limit(server.pid, parent.num_fds())  # not one more: the next accept() fails
        with socket.create_connection(server.address, timeout=IO_TIMEOUT) as waiting:
            waiting.sendall(b"waiting")
            share = cpu_share(server.pid, CPU_WINDOW)
            set_fd_limit(server.pid, 1024)
            assert waiting.recv(16) == b"waiting", "the client that waited at EMFILE was not served"
        assert share < MAX_CPU_SHARE, f"the parent used {share:.0%} of a core at EMFILE"
        assert server.running()
