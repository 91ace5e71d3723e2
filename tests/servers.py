"""The servers under test as the suite sees them: one of ours or a broken one, started
here or running elsewhere, and their state at rest (descriptors, threads) to return to.
"""

from __future__ import annotations

import contextlib
import resource
import signal
import socket
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from tests.clients import connect, echo
from toolkit.measure import SETTLE, server_holds_connection
from toolkit.process import PORT, Address, ServerProcess, ServerSpec, model_spec, wait_until
from toolkit.registry import ROOT

BROKEN_PREFIX = "broken/"


class Server(Protocol):
    """What every test of groups 1-4 needs: an address. pid is None for a --target."""

    @property
    def address(self) -> Address: ...

    @property
    def pid(self) -> int | None: ...


@dataclass(frozen=True)
class RunningElsewhere:
    """A server the suite did not start (--target): an address and nothing more."""

    address: Address
    pid: None = None


# What the `start_server` fixture gives a test: start_server("--drain-timeout", "1").
StartServer = Callable[..., ServerProcess]
# pytest's record_property fixture: record_property("measured", "...") reaches the report.
RecordProperty = Callable[[str, object], None]


def broken_script(name: str) -> Path:
    """Where the broken server `broken/<name>` lives: tests/broken/<name>.py."""
    return ROOT / "tests" / "broken" / f"{name.removeprefix(BROKEN_PREFIX)}.py"


def spec_for(name: str) -> ServerSpec:
    """One of our models (`python3 -m blocking`), or a broken server (`broken/upper`)."""
    if name.startswith(BROKEN_PREFIX):
        module = f"tests.broken.{name.removeprefix(BROKEN_PREFIX)}"
        return ServerSpec(name, (sys.executable, "-m", module, "--port", PORT), lifecycle=True)
    return model_spec(name)


@contextlib.contextmanager
def raised_fd_limit(needed: int) -> Iterator[None]:
    """Let this test process (and the servers it starts meanwhile, which inherit it)
    open `needed` descriptors, raising the soft limit up to the hard one; fail if even
    that is short. The limit is restored afterwards: later tests on this worker, and
    the servers they start, must see the limit the run began with."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        yield
        return
    assert hard == resource.RLIM_INFINITY or hard >= needed, (
        f"this test needs {needed} file descriptors; the hard limit (ulimit -Hn) is {hard}"
    )
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@contextlib.contextmanager
def frozen(server: ServerProcess) -> Iterator[None]:
    """Stop the server process (SIGSTOP), so connections wait unaccepted, then go on."""
    server.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        server.send_signal(signal.SIGCONT)


def ipv6_loopback_available() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


def quiet_baseline(server: ServerProcess, measure: Callable[[int], int]) -> int:
    """The measure once one client has been served and has gone: lazy imports, pools
    and caches are warmed up, and no connection is open."""
    with connect(server.address) as sock:
        assert echo(sock, b"warm up") == b"warm up"
        client = sock.getsockname()[:2]
    gone = wait_until(lambda: not server_holds_connection(server.pid, client), timeout=SETTLE)
    assert gone, f"the server still holds a client {SETTLE}s after it closed"
    return measure(server.pid)


def assert_back_to(server: ServerProcess, measure: Callable[[int], int], baseline: int, what: str) -> None:
    settled = wait_until(lambda: measure(server.pid) <= baseline, timeout=SETTLE)
    assert settled, f"{measure(server.pid)} {what} open {SETTLE}s after the clients left; {baseline} before"
