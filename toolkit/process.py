"""Running a server as a process: how to start it, when it is ready, how to stop it.

The suite, the benchmark and the docs tools all start servers this way. Every wait is
bounded: a server may be broken in any way (silent, slow, crashed), and a helper that
blocks forever turns a clear failure into a hang. Standard library only.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from toolkit import registry

PORT = "{port}"  # where a server's command takes the port to listen on

# Generous on purpose: on a loaded 2-core machine a slow answer is not a wrong answer.
# Tests that check promptness assert their own, tighter, bounds.
READY_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0  # a SIGTERM'd server may drain for the default 5 s before it exits
EXIT_TIMEOUT = 5.0  # a server that should exit at once (bad arguments, --help) but serves instead

# The line a model prints once it accepts connections (common.lifecycle.announce()):
# `listening on 127.0.0.1:7007`, or `listening on [::1]:7007`.
READY_LINE = re.compile(r"listening on (?:\[(?P<ipv6>[^\]]+)\]|(?P<ipv4>[^:\s]+)):(?P<port>\d+)")

Address = tuple[str, int]
CompletedProcess = subprocess.CompletedProcess[str]


@dataclass(frozen=True)
class ServerSpec:
    """A server under test: how to start it (or where it already runs), what it offers.

    command is an argv with PORT ("{port}") where the port goes. A server that follows
    io-models' command line (lifecycle) is started on port 0 and read its port from
    its ready line; any other is given a free port and is ready once it accepts.
    """

    name: str
    command: tuple[str, ...] | None = None
    target: Address | None = None
    lifecycle: bool = False
    deviations: Mapping[str, str] = field(default_factory=dict)  # case id -> documented reason
    unavailable: str | None = None  # why it cannot run here at all
    # A limit the model declares on purpose: the most connections it can ever hold
    # (select_mux: select() cannot watch a descriptor >= FD_SETSIZE, 1024).
    connection_cap: int | None = None
    cap_reason: str = ""
    variant: str = ""  # "ipv6": the same server, started with the arguments below
    extra_args: tuple[str, ...] = ()

    def argv(self, port: int, *extra_args: str) -> list[str]:
        assert self.command is not None, f"{self.name} runs elsewhere; the suite cannot start it"
        return [part.replace(PORT, str(port)) for part in self.command] + [*self.extra_args, *extra_args]

    def shown_command(self) -> str | None:
        """The command as a reader would type it: `python`, not this machine's path to it."""
        if self.command is None:
            return None
        return shlex.join("python" if part == sys.executable else part for part in self.command)


def over_cap(spec: ServerSpec, connections: int) -> str | None:
    """Why the server cannot be asked to hold this many connections, if its declared cap says so."""
    if spec.connection_cap is None or connections <= spec.connection_cap:
        return None
    return f"declares a cap of {spec.connection_cap:,} connections ({spec.cap_reason})"


def model_spec(name: str) -> ServerSpec:
    """One of the models in the registry, as `python3 -m NAME`, with what it declares."""
    model = registry.model(name)
    return ServerSpec(
        name,
        (sys.executable, "-m", name, "--port", PORT),
        lifecycle=True,
        unavailable=model.missing(),
        connection_cap=model.connection_cap,
        cap_reason=model.cap_reason,
        deviations=model.deviations,
    )


def run_server(spec: ServerSpec, port: int, *args: str, timeout: float = EXIT_TIMEOUT) -> CompletedProcess:
    """Run a server that is expected to exit on its own (bad arguments, --help, a busy port)."""
    return subprocess.run(
        spec.argv(port, *args),
        cwd=registry.ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def free_port() -> int:
    """A port nothing listens on now. Another process could take it before the server
    does; then the server fails to start, loudly, rather than a test passing wrongly."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port: int = probe.getsockname()[1]
    return port


def accepts(address: Address) -> bool:
    """Is something accepting connections at address?"""
    try:
        socket.create_connection(address, timeout=1.0).close()
    except OSError:
        return False
    return True


def listens_on(pid: int, port: int) -> bool:
    """Does process pid hold a socket listening on port? Its descriptors (/proc/PID/fd)
    against the kernel's listeners (/proc/net/tcp{,6}, state 0A)."""
    try:
        links = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
    except OSError:  # gone, or not ours to look at
        return False
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text(encoding="ascii").splitlines()[1:]:
            fields = line.split()  # sl local remote state ... inode
            listening = fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port
            if listening and f"socket:[{fields[9]}]" in links:
                return True
    return False


class ServerNotReady(Exception):
    """The server exited, or stayed silent, before it was ready: never a case's own
    assertion, so a declared deviation does not excuse it."""


class ServerProcess:
    """A server the suite started, running until close(); usable as a context manager.

    The constructor returns once the server is ready: it printed its ready line, or,
    for a server that does not print one, its port accepts connections. stdout and
    stderr go to temporary files, not pipes: a pipe nobody reads fills up and would
    block a chatty server.
    """

    def __init__(self, spec: ServerSpec, *extra_args: str, ready_timeout: float = READY_TIMEOUT) -> None:
        self._stdout = tempfile.TemporaryFile()  # noqa: SIM115 -- open until close(), not one block
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115
        port = 0 if spec.lifecycle else free_port()
        self.process = subprocess.Popen(
            spec.argv(port, *extra_args),
            cwd=registry.ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self._stdout,
            stderr=self._stderr,
            # Its own process group: close() can then end children it forked, too.
            start_new_session=True,
        )
        self.pid: int = self.process.pid
        self.ready_line: str | None = None
        self._closed_with: tuple[str, str] | None = None  # (stdout, stderr) once closed
        try:
            self.address = self._wait_until_ready(("127.0.0.1", port), spec.lifecycle, ready_timeout)
        except BaseException:
            self.close()
            raise

    def _wait_until_ready(self, address: Address, announces: bool, timeout: float) -> Address:
        deadline = time.monotonic() + timeout
        while True:
            if match := READY_LINE.search(self.stdout_text()):
                self.ready_line = match[0]
                return (match["ipv6"] or match["ipv4"], int(match["port"]))
            # Running first, and listening itself: with a free port picked for it, a
            # server that lost the race for that port exits, while whoever won accepts.
            if not announces and self.running() and accepts(address) and listens_on(self.pid, address[1]):
                return address
            if not self.running():
                raise ServerNotReady(
                    f"server exited with {self.process.returncode} before it was ready; "
                    f"stderr:\n{self.stderr_text()}"
                )
            if time.monotonic() > deadline:
                raise ServerNotReady(f"not ready within {timeout}s; stderr:\n{self.stderr_text()}")
            time.sleep(0.01)

    def send_signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float) -> int:
        """The exit status; raises subprocess.TimeoutExpired if still running after timeout."""
        return self.process.wait(timeout)

    def running(self) -> bool:
        return self.process.poll() is None

    def stdout_text(self) -> str:
        return self._closed_with[0] if self._closed_with else read_whole(self._stdout)

    def stderr_text(self) -> str:
        return self._closed_with[1] if self._closed_with else read_whole(self._stderr)

    def close(self, grace: float = STOP_TIMEOUT) -> None:
        """Stop the server politely (SIGTERM), then firmly (SIGKILL) if it has not exited
        after grace seconds; then end whatever it left running in its process group."""
        if self.running():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        if not self._closed_with:  # what it wrote stays readable, for checks after the stop
            self._closed_with = self.stdout_text(), self.stderr_text()
        self._stdout.close()
        self._stderr.close()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


def read_whole(file: BinaryIO) -> str:
    """All a child process has written to file so far. pread() leaves the file offset
    alone: the child shares it, and a seek() here would make its next write land on
    top of what it wrote before."""
    descriptor = file.fileno()
    return os.pread(descriptor, os.fstat(descriptor).st_size, 0).decode(errors="replace")


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.01) -> bool:
    """Poll predicate until it holds (True) or timeout passes (False)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True
