"""Measure every server under one scenario: a fresh process of each, a warm-up, then
several measured runs of the load generator, the servers taking turns run by run, each
with its own CPU time and memory read just around its measured seconds."""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]  # no stubs in the extras

from bench.contenders import Contender
from bench.loadgen import Load, Measured, run
from toolkit.measure import SETTLE, server_cpu_seconds, server_fds, server_rss, server_threads
from toolkit.process import ServerProcess, over_cap, wait_until

# At or above this share of its core, the load generator may be what sets the pace:
# the report says so next to the figure instead of calling it the server's limit.
SATURATED = 0.90
PERCENTILES = {"p50": 0.50, "p99": 0.99, "p99.9": 0.999}
# A server is quiet when it used at most one clock tick of CPU (the kernel counts in
# ticks of 10 ms) in QUIET seconds.
QUIET = 0.05
CLOCK_TICK = 0.01


@dataclass(frozen=True)
class Scenario:
    kind: str  # pingpong, throughput, inflight, hold (many connections), idle
    connections: int
    size: int = 64  # bytes per message
    inflight: int = 1  # messages outstanding per connection; 0: the connections stay silent
    # Repeated runs, after a warm-up; or one run as long as all of those together, for
    # the scenarios where the connects cost more than the run (hold) or nothing warms (idle).
    repeated: bool = True

    def runs(self, settings: Settings) -> int:
        return settings.repeats if self.repeated else 1

    def run_seconds(self, settings: Settings) -> float:
        return settings.seconds if self.repeated else settings.seconds * settings.repeats

    def label(self) -> str:
        return describe(self.kind, self.connections, self.size, self.inflight)


@dataclass(frozen=True)
class Settings:
    seconds: float  # per measured run
    warmup: float
    repeats: int
    server_cpu: int | None  # pin the server here, and the load generator to loadgen_cpu
    loadgen_cpu: int | None


def describe(kind: str, connections: int, size: int, inflight: int) -> str:
    """A scenario as the tables title it: `throughput: 100 × 64 B`."""
    if kind == "idle":
        return f"idle: {connections:,} connections"
    in_flight = f", {inflight} in flight" if inflight > 1 else ""
    return f"{kind}: {connections:,} × {size_label(size)}{in_flight}"


def size_label(size: int) -> str:
    return f"{size // 1024} KiB" if size >= 1024 else f"{size} B"


class ServerUsage:
    """The server's CPU seconds and peak memory over a window (bench.loadgen.Window)."""

    def __init__(self, pid: int, idle_descriptors: int) -> None:
        self.process = psutil.Process(pid)
        self.idle_descriptors = idle_descriptors
        self.cpu_seconds = 0.0
        self.elapsed = 0.0
        self.peak_rss = 0

    def cpu(self) -> float:
        return server_cpu_seconds(self.process.pid)  # every process and thread of the server

    def accepted(self, connections: int) -> None:
        # Each connection the server holds is a descriptor: count them. (Bounded: a server
        # that turns clients away never gets there, and the load generator then says so.)
        wanted = self.idle_descriptors + connections
        wait_until(lambda: server_fds(self.process.pid) >= wanted, SETTLE, interval=0.001)

    def start(self) -> None:
        # "5" resets the kernel's high-water mark (VmHWM) to the current RSS, so the peak
        # read at stop() is this window's, not the process's lifetime's.
        with contextlib.suppress(OSError):
            Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")
        self.cpu_before, self.started = self.cpu(), time.monotonic()

    def stop(self) -> None:
        self.cpu_seconds = self.cpu() - self.cpu_before
        self.elapsed = time.monotonic() - self.started
        self.peak_rss = max(peak_rss(self.process.pid), server_rss(self.process.pid))


def peak_rss(pid: int) -> int:
    """VmHWM from /proc (Linux); 0 where there is none."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def pin(pid: int, cpu: int | None) -> None:
    """Every thread of pid and of the processes it started (prefork's workers) onto one
    CPU; threads and processes started later inherit it."""
    if cpu is None:
        return
    processes = [pid, *(child.pid for child in psutil.Process(pid).children(recursive=True))]
    for process in processes:
        with contextlib.suppress(OSError):  # a process may end meanwhile
            for thread in os.listdir(f"/proc/{process}/task"):
                with contextlib.suppress(OSError):  # a thread may end meanwhile
                    os.sched_setaffinity(int(thread), {cpu})


class Trial:
    """One server under one scenario: a fresh server process and its measured runs."""

    def __init__(self, contender: Contender, scenario: Scenario, settings: Settings) -> None:
        self.contender, self.scenario, self.settings = contender, scenario, settings
        self.runs: list[tuple[Measured, ServerUsage]] = []
        self.server: ServerProcess | None = None
        self.failure = None
        self.failure = over_cap(contender.spec, scenario.connections)
        if self.failure:
            return
        self.server = ServerProcess(contender.spec)
        pin(self.server.pid, settings.server_cpu)
        self.idle_rss = server_rss(self.server.pid)
        self.idle_descriptors = server_fds(self.server.pid)
        self.idle_threads = server_threads(self.server.pid)

    def warm_up(self) -> None:
        """Fill caches, pools and the allocator's arenas; the figures are dropped."""
        if self.server and not self.failure and self.scenario.repeated:
            self.drive(self.settings.warmup)

    def run(self) -> None:
        if self.server and not self.failure:
            self.drive(self.scenario.run_seconds(self.settings), keep=True)

    def drive(self, seconds: float, *, keep: bool = False) -> None:
        assert self.server is not None
        server = self.server
        usage = ServerUsage(server.pid, self.idle_descriptors)
        load = Load(self.scenario.connections, self.scenario.size, self.scenario.inflight, seconds)
        try:
            measured = run(*server.address, load, cpu=self.settings.loadgen_cpu, window=usage)
        except RuntimeError as error:  # the load generator could not even connect
            self.failure = str(error)
            return
        finally:
            self.settle()
        if measured.failure:
            self.failure = f"the load generator says: {measured.failure}"
        elif keep:
            self.runs.append((measured, usage))

    def settle(self) -> None:
        """Wait until the server has closed this run's connections, its threads have
        ended, and it has stopped using CPU: all the servers share one CPU, and the next
        one measured must not pay for this one's clean-up."""
        assert self.server is not None
        pid = self.server.pid
        wait_until(lambda: server_fds(pid) <= self.idle_descriptors, SETTLE, interval=0.001)
        wait_until(lambda: server_threads(pid) <= self.idle_threads, SETTLE)
        usage = ServerUsage(pid, self.idle_descriptors)

        def quiet() -> bool:
            before = usage.cpu()
            time.sleep(QUIET)
            return usage.cpu() - before <= CLOCK_TICK

        wait_until(quiet, SETTLE)

    def result(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "server": self.contender.name,
            "scenario": self.scenario.kind,
            "connections": self.scenario.connections,
            "size": self.scenario.size,
            "inflight": self.scenario.inflight,
            "failure": self.failure,
            "runs": raw(self.runs),
        }
        if self.failure:
            return result
        return result | summarize(self.runs, self.scenario.connections, self.idle_rss)

    def close(self) -> None:
        if self.server:
            self.server.close()


def measure(
    contenders: list[Contender], scenario: Scenario, settings: Settings, step: Callable[[str], None]
) -> list[dict[str, Any]]:
    """Every server under one scenario. All of them run at once, idle but one, and take
    turns run by run: drift in the machine (a noisy neighbour, a warming CPU) then falls
    on every server alike, and their ratios hold even when the absolute figures move."""
    with contextlib.ExitStack() as stack:
        trials = []
        for contender in contenders:
            trial = Trial(contender, scenario, settings)
            stack.callback(trial.close)
            trials.append(trial)
        for trial in trials:
            trial.warm_up()
        for _ in range(scenario.runs(settings)):
            for trial in trials:
                step(f"{scenario.label()}: {trial.contender.name}")
                trial.run()
        return [trial.result() for trial in trials]


def summarize(runs: list[tuple[Measured, ServerUsage]], connections: int, idle_rss: int) -> dict[str, Any]:
    """Medians over the runs; latency percentiles from all their round trips at once."""
    peak = max(usage.peak_rss for _, usage in runs)
    memory_and_cpu = {
        "server_cpu_percent": statistics.median(100 * u.cpu_seconds / u.elapsed for _, u in runs),
        "rss_kib": server_rss(runs[-1][1].process.pid) // 1024,
        "peak_rss_kib": peak // 1024,
        "rss_per_connection_kib": (peak - idle_rss) / 1024 / connections,
    }
    if not all(measured.round_trips for measured, _ in runs):  # idle: nothing was sent
        return memory_and_cpu
    merged: dict[int, int] = {}
    for measured, _ in runs:
        for lower_bound, count in measured.histogram_ns:
            merged[lower_bound] = merged.get(lower_bound, 0) + count
    all_round_trips = Measured(0, 0, 0, 0, None, sorted(merged.items()))
    client_cpu = statistics.median(m.client_cpu_seconds / m.seconds for m, _ in runs)
    rates = [m.round_trips / m.seconds for m, _ in runs]
    return memory_and_cpu | {
        "round_trips_per_second": statistics.median(rates),
        # How far apart the runs were, as a share of the median: the noise to read
        # every ratio against.
        "spread": (max(rates) - min(rates)) / statistics.median(rates) if len(rates) > 1 else None,
        "megabytes_per_second": statistics.median(m.bytes / m.seconds / 1e6 for m, _ in runs),
        "latency_us": {name: all_round_trips.percentile(p) / 1000 for name, p in PERCENTILES.items()},
        "server_cpu_us_per_round_trip": statistics.median(
            1e6 * u.cpu_seconds / m.round_trips for m, u in runs
        ),
        "client_cpu_percent": 100 * client_cpu,
        "loadgen_saturated": client_cpu >= SATURATED,
    }


def raw(runs: list[tuple[Measured, ServerUsage]]) -> list[dict[str, Any]]:
    """Each run's own figures, for the JSON: nothing is lost to the medians."""
    return [
        {
            "seconds": m.seconds,
            "round_trips": m.round_trips,
            "bytes": m.bytes,
            "client_cpu_seconds": m.client_cpu_seconds,
            "server_cpu_seconds": u.cpu_seconds,
            "server_seconds": u.elapsed,
            "peak_rss_kib": u.peak_rss // 1024,
            "failure": m.failure,
        }
        for m, u in runs
    ]
