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
from dataclasses import dataclass
from pathlib import Path

SOURCE = Path(__file__).with_name("loadgen.c")
CACHE = Path(__file__).with_name(".build")  # beside the source, as .venv is: gitignored


def build() -> Path:
    """Compile loadgen.c once per version of its source; the binary is cached."""
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:16]
    binary = CACHE / f"loadgen-{digest}"
    if not binary.exists():
        compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
        if compiler is None:
            raise SystemExit("error: the load generator needs a C compiler (cc or gcc)")
        CACHE.mkdir(parents=True, exist_ok=True)
        partial = binary.with_suffix(".partial")
        subprocess.run([compiler, "-O2", "-Wall", "-o", str(partial), str(SOURCE)], check=True)
        partial.replace(binary)  # atomic: a concurrent build never runs a half-written file
    return binary


@dataclass(frozen=True)
class Load:
    connections: int
    size: int  # bytes per message
    inflight: int  # messages outstanding per connection
    seconds: float


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


def run(host: str, port: int, load: Load, *, cpu: int | None = None) -> Measured:
    """Drive the server at host:port with load; pin the load generator to `cpu` if given."""
    command = [str(build()), host, str(port), str(load.connections), str(load.size)]
    command += [str(load.inflight), str(load.seconds)]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=load.seconds + 60,
        check=False,
        preexec_fn=None if cpu is None else lambda: os.sched_setaffinity(0, {cpu}),
    )
    if result.returncode not in (0, 3):  # 3: it ran, and says what went wrong
        raise RuntimeError(f"load generator exited {result.returncode}: {result.stderr.strip()}")
    raw = json.loads(result.stdout)
    return Measured(
        seconds=raw["seconds"],
        round_trips=raw["round_trips"],
        bytes=raw["bytes"],
        client_cpu_seconds=raw["client_cpu_seconds"],
        failure=raw["failure"],
        histogram_ns=[(lower, count) for lower, count in raw["histogram_ns"]],
    )
