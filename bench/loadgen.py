"""Build and run the C load generator (loadgen.c), and read what it measured.

The load generator is C because a Python client costs as much per round trip as the
Python server it measures: measured, a selectors client ran at 97% of its core while
driving epoll_mux, so it, not the server, set the figure. The C one stays below the
server (which reaches 99-100% of its core) at every load tried so far.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

SOURCE = Path(__file__).with_name("loadgen.c")
CACHE = Path(__file__).with_name(".build")  # beside the source, as .venv is: gitignored


def build(source: Path = SOURCE) -> Path:
    """Compile a C program once per version of its source; the binary is cached."""
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    binary = CACHE / f"{source.stem}-{digest}"
    if not binary.exists():
        compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
        if compiler is None:
            raise SystemExit("error: the load generator needs a C compiler (cc or gcc)")
        CACHE.mkdir(parents=True, exist_ok=True)
        # A name of this process's own: two processes building at once (xdist workers)
        # each write their own file, and the second replace() swaps in an identical binary.
        partial = binary.with_suffix(f".{os.getpid()}.partial")
        subprocess.run([compiler, "-O2", "-Wall", "-o", str(partial), str(source)], check=True)
        partial.replace(binary)  # atomic: a concurrent build never runs a half-written file
    return binary


@dataclass(frozen=True)
class Load:
    connections: int
    size: int  # bytes per message
    inflight: int  # messages outstanding per connection
    seconds: float
    idle: int = 0  # more connections, opened after those and never sent a byte


@dataclass(frozen=True)
class Measured:
    seconds: float
    round_trips: int
    bytes: int
    client_cpu_seconds: float
    failure: str | None
    histogram_ns: list[tuple[int, int]]  # (bucket's lower bound, count), ascending

    def percentile(self, fraction: float) -> float:
        """The latency (ns) that `fraction` of the round trips did not exceed."""
        wanted = fraction * sum(count for _, count in self.histogram_ns)
        seen = 0
        for lower_bound, count in self.histogram_ns:
            seen += count
            if seen >= wanted:
                return float(lower_bound)
        return float("nan")


class Window(Protocol):
    """What the driver does while the load generator connects, and just before and just
    after the measured seconds (read the server's CPU time and memory), so the connects
    and closes fall outside the window."""

    def accepted(self, connections: int) -> None:
        """Return once the server has accepted this many of our connections."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


def run(
    host: str, port: int, load: Load, *, cpu: int | None = None, window: Window | None = None
) -> Measured:
    """Drive the server at host:port with load; pin the load generator to `cpu` if given.

    Raises RuntimeError if it could not even start (e.g. the server refused its connects).
    """
    with connected(host, port, load, cpu=cpu, window=window) as session:
        return session.measure(window)


class Session:
    """A load generator whose connections are open: each measure() is one run of
    load.seconds on them, so connects that cost more than a run are paid once."""

    def __init__(self, loadgen: subprocess.Popen[str]) -> None:
        self.loadgen = loadgen
        self.failed = False

    def measure(self, window: Window | None = None) -> Measured:
        """One run, with the window's start() and stop() just around it."""
        stdin, stdout = self.loadgen.stdin, self.loadgen.stdout
        assert stdin is not None and stdout is not None
        if self.failed:  # it runs no more after a failure
            raise RuntimeError("the load generator stopped at a failure; measure() no more")
        if window:
            window.start()
        stdin.write("go\n")
        stdin.flush()
        line = stdout.readline()  # bounded: the run ends after load.seconds, its drain after 10 s
        if window:
            window.stop()
        if not line:
            self.loadgen.wait()
            raise RuntimeError(f"load generator exited {self.loadgen.returncode}: {self.stderr()}")
        raw = json.loads(line)
        self.failed = raw["failure"] is not None
        return Measured(
            seconds=raw["seconds"],
            round_trips=raw["round_trips"],
            bytes=raw["bytes"],
            client_cpu_seconds=raw["client_cpu_seconds"],
            failure=raw["failure"],
            histogram_ns=[(lower, count) for lower, count in raw["histogram_ns"]],
        )

    def stderr(self) -> str:
        assert self.loadgen.stderr is not None
        return self.loadgen.stderr.read().strip()


@contextmanager
def connected(
    host: str, port: int, load: Load, *, cpu: int | None = None, window: Window | None = None
) -> Iterator[Session]:
    """Start the load generator and let it open every connection (window.accepted() paces
    the waves); closing the session closes them. RuntimeError if it could not connect."""
    command = [str(build()), host, str(port), str(load.connections), str(load.size)]
    command += [str(load.inflight), str(load.seconds), str(load.idle)]
    with subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as loadgen:
        assert loadgen.stdin is not None and loadgen.stdout is not None
        session = Session(loadgen)
        if cpu is not None:  # one thread, and it waits for "go": pinned before it measures
            os.sched_setaffinity(loadgen.pid, {cpu})
        # Each readline() is bounded: the load generator gives up on a connect after 10 s.
        while (line := loadgen.stdout.readline()).startswith("accept "):
            if window:
                window.accepted(int(line.split()[1]))
            loadgen.stdin.write("more\n")
            loadgen.stdin.flush()
        if line != "connected\n":
            loadgen.wait()
            raise RuntimeError(session.stderr() or f"load generator exited {loadgen.returncode}")
        try:
            yield session
        except BaseException:  # the caller's error is the one to see, not the exit it caused
            loadgen.stdin.close()
            loadgen.wait()
            raise
        loadgen.stdin.close()  # now it closes its connections and exits
        if loadgen.wait() not in (0, 3):  # 3: it ran, and says what went wrong
            raise RuntimeError(f"load generator exited {loadgen.returncode}: {session.stderr()}")
