"""What one echoed message costs each server, counted rather than timed: instructions and syscalls.

Timed figures move with whatever else the machine does; counts do not. Each server (every
model, every Python peer, and the C floor for scale) runs under a counter twice, serving
N and then 2N messages over the same connections, of the same size, from a lock-step
client (each round sends one message on every connection, then reads every echo back in
full, and the next round starts only once every thread of the server sleeps: so each
message finds the server in the same state, however fast the machine runs the client,
and an event loop's pass finds the same work). The counter stops with the server (SIGTERM), and

    per message = (count(2N) - count(N)) / N

so start-up, the connections' set-up and shutdown cancel out. The counters:

- instructions: `valgrind --tool=callgrind`, summed over every output file (every thread,
  and with --trace-children every process: forking's children, prefork's workers). It
  counts all user-space code of the process: the interpreter, and the C parts of uvloop
  (libuv) and gevent (libev, greenlet).
- syscalls: `strace -f -c`, the same N and 2N runs (docs/syscalls.py's parser).

Then a cost model: the committed bench run's server CPU µs per round trip (100 × 64 B) is
fitted as a·instructions + b·syscalls (least squares), to show how well counts predict
time. Writes docs/bench/cost.json, docs/bench/cost.md and docs/bench/charts/cost.png:

    python3 -m bench.cost                  # everything (about 25 minutes, niced; two at once)
    python3 -m bench.cost --servers blocking,asyncio_io --output /tmp/cost
    python3 -m bench.cost --servers uring_io --merge   # measure one again, into cost.json
    python3 -m bench.cost --render         # no measuring: the page and chart from cost.json
    python3 -m bench.cost --switches       # the timed part of docs/bench/cost.md's question
                                           # (b): run it alone, on a quiet machine
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import shlex
import signal
import socket
import socketserver
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FuncFormatter

import toolkit.machine
from bench.charts import DPI
from bench.contenders import Contender, contenders
from bench.measure import size_label
from bench.report import FULL_RUN, machine_line, markdown_table
from docs.syscalls import parse_summary
from toolkit.process import ServerProcess, wait_until

ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "docs" / "bench"
SAVED = RUNS / "cost.json"  # the committed run: docs/bench/cost.md and its chart are drawn from it
COMMAND = "python3 -m bench.cost"
READY_TIMEOUT = 300.0  # Python's start-up, under callgrind, on a shared and niced machine
IO_TIMEOUT = 120.0  # one client operation: a server under callgrind runs ~50 times slower
STOP_TIMEOUT = 120.0  # for callgrind to write every process's file after the SIGTERM
PARALLEL = 2  # runs at once: this machine has two cores, and others share them
SETTLE_POLL = 0.001  # a round's wait for the server to sleep: under callgrind, a few ms
IDLE_SECONDS = 10.0  # how long the time-proportional check leaves a server idle


@dataclass(frozen=True)
class Load:
    """connections held at once; each round sends one size-byte message on each, in turn,
    then reads every echo. N messages = connections × rounds; the 2N run doubles rounds."""

    connections: int
    size: int
    rounds: int

    @property
    def messages(self) -> int:
        return self.connections * self.rounds

    @property
    def key(self) -> str:  # cost.json's key for this load's rows
        return f"{self.connections} × {size_label(self.size)}"

    @property
    def label(self) -> str:  # as the pages write it
        return f"{self.connections:,} × {size_label(self.size)}"


MAIN = Load(1, 64, 1000)  # lock-step, one message in flight, the server asleep between: exact
HEADLINE = Load(100, 64, 20)  # the bench's headline load, and its CPU figure the fit uses
BULK = Load(1000, 1024, 2)  # where blocking trails socketserver threads in the bench
BULK_SERVERS = ("blocking", "socketserver threads")
FIT_LOAD = HEADLINE
# The two servers of question (a) in docs/bench/cost.md, annotated per function.
ANNOTATED = ("asyncio_io", "asyncio Protocol")


def loads_of(name: str) -> tuple[Load, ...]:
    return (MAIN, HEADLINE, BULK) if name in BULK_SERVERS else (MAIN, HEADLINE)


def cannot_hold(name: str, load: Load) -> str | None:
    """Why a server cannot serve the load at all, or None. ForkingTCPServer serves
    max_children clients at once; past that it waits in waitpid() for a child to end, and a
    lock-step client that holds its connection never ends."""
    limit = socketserver.ForkingMixIn.max_children
    if name == "socketserver forking" and load.connections > limit:
        return f"ForkingTCPServer serves {limit} connections at most (max_children), not {load.connections:,}"
    return None


# --- counting ------------------------------------------------------------------------


def callgrind_prefix(folder: Path) -> tuple[str, ...]:
    return (
        *NICE,
        *SEED,
        "valgrind",
        "--tool=callgrind",
        "--trace-children=yes",  # forking's children and prefork's workers count too
        "--max-threads=3000",  # blocking's thread per connection, at 1,000 connections
        f"--callgrind-out-file={folder}/callgrind.out.%p",
    )


def strace_attach(folder: Path, pids: Sequence[int]) -> subprocess.Popen[bytes]:
    """strace -f -c on the running server's processes (every thread, and what they fork):
    attached, not wrapped, since a server that prints no ready line is ready once *its*
    process listens, which a wrapping strace's would not. Returns once all are traced."""
    attached = [arg for pid in pids for arg in ("-p", str(pid))]
    strace = subprocess.Popen(
        ["strace", "-f", "-c", "-o", str(folder / "strace.summary"), *attached], stderr=subprocess.DEVNULL
    )
    wait_for(lambda: all(traced_by(pid) for pid in pids), IO_TIMEOUT, "strace to attach")
    return strace


def traced_by(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("TracerPid:", 1)[1].split()[0])


# A fixed hash seed, so that the same work takes the same instructions run after run
# (dict and set layouts depend on the seed); and counting runs are niced: not timed.
SEED = ("env", "PYTHONHASHSEED=0")
NICE = ("nice", "-n", "19")

TOTALS = re.compile(r"^(?:summary|totals):\s+(\d+)", re.MULTILINE)


def callgrind_instructions(text: str) -> int:
    """Ir from one callgrind output file: its "totals:" line, else its "summary:" line
    (the first event is Ir, the only one collected without --cache-sim)."""
    found = {line.split(":")[0]: int(match) for line, match in _totals(text)}
    if "totals" in found:
        return found["totals"]
    if "summary" in found:
        return found["summary"]
    raise ValueError("no totals: or summary: line; is this a callgrind output file?")


def _totals(text: str) -> Iterator[tuple[str, str]]:
    for match in TOTALS.finditer(text):
        yield match[0], match[1]


def instructions(folder: Path) -> int:
    """Every process's instructions: the sum over all of callgrind's output files."""
    files = sorted(folder.glob("callgrind.out.*"))
    if not files:
        raise RuntimeError(f"callgrind wrote no output in {folder}")
    return sum(callgrind_instructions(file.read_text(errors="replace")) for file in files)


def syscalls(folder: Path) -> Counter[str]:
    calls, _ = parse_summary((folder / "strace.summary").read_text())
    return calls


def per_message(small: float, large: float, messages: int) -> float:
    """The N/2N difference: what the second N messages cost, one by one."""
    return (large - small) / messages


# --- running -------------------------------------------------------------------------


def drive(
    address: tuple[str, int], load: Load, rounds: int, settle: Callable[[], None] = lambda: None
) -> None:
    """The client: load.connections held, `rounds` rounds, each echo checked whole and
    settle() called before the next round, then a half-close and the server's EOF on each."""
    message = bytes(range(256)) * (load.size // 256) if load.size >= 256 else bytes(range(load.size))
    with contextlib.ExitStack() as stack:
        clients = [
            stack.enter_context(socket.create_connection(address, IO_TIMEOUT))
            for _ in range(load.connections)
        ]
        for sock in clients:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for done in range(rounds):
            try:
                exchange(clients, message)
            except TimeoutError as error:  # socket's own text says only "timed out"
                raise TimeoutError(
                    f"no progress for {IO_TIMEOUT:g} s on one send or receive, in round {done + 1} of "
                    f"{rounds} ({load.connections:,} connections)"
                ) from error
            settle()
        for sock in clients:
            sock.shutdown(socket.SHUT_WR)
        for sock in clients:
            if sock.recv(1) != b"":
                raise RuntimeError("data after the last echo, where EOF was due")


def exchange(clients: Sequence[socket.socket], message: bytes) -> None:
    """One round: the message sent on every connection, then every echo read back whole."""
    for sock in clients:
        sock.sendall(message)
    for sock in clients:
        echoed = bytearray()
        while len(echoed) < len(message) and (chunk := sock.recv(len(message) - len(echoed))):
            echoed += chunk
        if echoed != message:
            raise RuntimeError(f"echo differs: sent {len(message)} B, received {len(echoed)} B")


def session(leader: int) -> list[int]:
    """The processes of the session leader started (ServerProcess starts each server in
    its own): the wrapper, the server, and whatever the server forked."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                # /proc/PID/stat: "pid (comm) state ppid pgrp session ..."; comm may hold spaces.
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[3]) == leader and fields[0] != "Z":  # a zombie has written its files
                    found.append(int(entry.name))
    return found


def asleep(pids: Sequence[int]) -> bool:
    """Whether every thread of these processes sleeps (state S: blocked in a syscall, or in
    valgrind's wait for its lock): the server has done all it was given."""
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").glob("*/stat"):
            with contextlib.suppress(OSError, IndexError):
                if task.read_text().rsplit(")", 1)[1].split()[0] != "S":
                    return False
    return True


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, poll: float = 0.05) -> None:
    if not wait_until(predicate, timeout, poll):
        raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")


NUDGE_AFTER = 5.0  # seconds after the SIGTERM: then connect once, and again each time


def stop(leader: int, address: tuple[str, int], name: str) -> None:
    """SIGTERM to the server; wait until every process of its session has exited.

    Valgrind 3.19 does not know that io_uring_enter can block, so it keeps signals masked
    while uring_io waits in it: the SIGTERM is delivered only once the wait returns. A
    connection wakes it; where the stop needs none, the listener is closed and the
    connection refused, and costs the server nothing."""
    os.kill(leader, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while session(leader):
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {STOP_TIMEOUT:g} s waiting for {name} to exit")
        with contextlib.suppress(TimeoutError):
            wait_for(lambda: not session(leader), NUDGE_AFTER, f"{name} to exit")
        if session(leader):
            with contextlib.suppress(OSError):
                socket.create_connection(address, IO_TIMEOUT).close()


@dataclass(frozen=True)
class Served:
    seconds: float  # the client's wall time, start to EOF


Attach = Callable[[Sequence[int]], "subprocess.Popen[bytes]"]


def serve_wrapped(
    contender: Contender,
    wrapper: tuple[str, ...],
    load: Load,
    rounds: int,
    *,
    idle: float = 0.0,
    attach: Attach | None = None,
    settled: bool = True,
) -> Served:
    """Run the contender under wrapper (an argv prefix: a counter's, or only the seed), with
    a counter attached if any, drive `rounds` rounds of load, leave it idle `idle` seconds,
    stop it with SIGTERM and let every process end (and the attached counter).

    settled: each round starts only once the server sleeps. Otherwise the client's speed
    decides how much work one pass of an event loop finds (uring_io's completions come
    one per pass or several), and with it the instructions: settled, every message meets
    the same server state, whatever else the machine is doing."""
    spec = contender.spec
    assert spec.command is not None
    wrapped = replace(spec, command=(*wrapper, *spec.command))
    server = ServerProcess(wrapped, ready_timeout=READY_TIMEOUT)
    try:
        before = len(session(server.pid))  # prefork's workers are up once it is ready
        counter = attach(session(server.pid)) if attach else None
        started = time.monotonic()

        def settle() -> None:
            if settled:
                pids = session(server.pid)  # once a round: the round's children are all up
                wait_for(lambda: asleep(pids), IO_TIMEOUT, f"{spec.name} to sleep", SETTLE_POLL)

        drive(server.address, load, rounds, settle)
        seconds = time.monotonic() - started
        # forking's children exit after their client; each must write its counts first.
        wait_for(lambda: len(session(server.pid)) <= before, STOP_TIMEOUT, f"{spec.name}'s children to exit")
        time.sleep(idle)
        stop(server.pid, server.address, spec.name)
        if counter:
            counter.wait(STOP_TIMEOUT)
    finally:
        server.close()
    return Served(seconds)


Count = TypeVar("Count")


Counting = Callable[[Path], tuple[tuple[str, ...], Attach | None]]  # folder -> (wrapper, attach)


def callgrind(folder: Path) -> tuple[tuple[str, ...], Attach | None]:
    return callgrind_prefix(folder), None


def strace(folder: Path) -> tuple[tuple[str, ...], Attach | None]:
    return (*NICE, *SEED), lambda pids: strace_attach(folder, pids)


def counted(
    contender: Contender, counting: Counting, total: Callable[[Path], Count], load: Load
) -> tuple[Count, Count, float]:
    """The counts of the N and 2N runs, and the 2N run's wall seconds."""
    figures = []
    for rounds in (load.rounds, 2 * load.rounds):
        with tempfile.TemporaryDirectory(prefix="cost-") as tmp:
            wrapper, attach = counting(Path(tmp))
            served = serve_wrapped(contender, wrapper, load, rounds, attach=attach)
            figures.append((total(Path(tmp)), served.seconds))
    (small, _), (large, large_seconds) = figures
    return small, large, large_seconds


ANNOTATE_LINE = re.compile(r"^\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(\S.*?)\s*$")


def annotate(folder: Path) -> dict[str, int]:
    """Instructions per function (self cost), summed over the folder's output files, from
    callgrind_annotate."""
    per_function: dict[str, int] = {}
    for file in folder.glob("callgrind.out.*"):
        text = subprocess.run(
            ["callgrind_annotate", "--inclusive=no", "--threshold=100", str(file)],
            capture_output=True,
            text=True,
            check=True,
            timeout=STOP_TIMEOUT,
        ).stdout
        for name, count in parse_annotate(text).items():
            per_function[name] = per_function.get(name, 0) + count
    return per_function


def parse_annotate(text: str) -> dict[str, int]:
    """function -> Ir, from callgrind_annotate's table (`1,234 (5.6%)  file:function [lib]`)."""
    table = text.split("file:function", 1)[-1] if "file:function" in text else ""
    found: dict[str, int] = {}
    for line in table.splitlines():
        if (match := ANNOTATE_LINE.match(line)) and "PROGRAM TOTALS" not in line:
            found[match[2]] = found.get(match[2], 0) + int(match[1].replace(",", ""))
    return found


def functions_per_message(contender: Contender, load: Load) -> dict[str, float]:
    """Instructions per message, per function, by the same N/2N difference."""
    runs = []
    for rounds in (load.rounds, 2 * load.rounds):
        with tempfile.TemporaryDirectory(prefix="cost-") as tmp:
            serve_wrapped(contender, callgrind_prefix(Path(tmp)), load, rounds)
            runs.append(annotate(Path(tmp)))
    small, large = runs
    return {
        name: per_message(small.get(name, 0), large.get(name, 0), load.messages)
        for name in small.keys() | large
    }


def idle_rate(contender: Contender, load: Load) -> float:
    """Instructions per second the server spends with nothing to do (timers, wake-ups):
    the N run again, left idle IDLE_SECONDS before the stop, less the plain N run."""
    counts = []
    for idle in (0.0, IDLE_SECONDS):
        with tempfile.TemporaryDirectory(prefix="cost-") as tmp:
            serve_wrapped(contender, callgrind_prefix(Path(tmp)), load, load.rounds, idle=idle)
            counts.append(instructions(Path(tmp)))
    return (counts[1] - counts[0]) / IDLE_SECONDS


def measure_one(contender: Contender, load: Load, idle_check: bool, with_syscalls: bool) -> dict[str, Any]:
    """One server at one load: instructions and syscalls per message, and how much of the
    instructions a time-proportional wake-up could account for."""
    try:
        small, large, seconds = counted(contender, callgrind, instructions, load)
    except (RuntimeError, OSError) as error:
        return {"unavailable": f"under callgrind: {error}"}
    row: dict[str, Any] = {
        "instructions_per_message": per_message(small, large, load.messages),
        "instructions": [small, large],
        # An upper bound: the 2N run's whole client time, connections included.
        "seconds_per_message_under_callgrind": seconds / (2 * load.messages),
    }
    if with_syscalls:
        row |= syscall_figures(contender, load)
    if idle_check:
        rate = idle_rate(contender, load)
        row["idle_instructions_per_second"] = rate
        row["time_proportional_share"] = (
            rate * row["seconds_per_message_under_callgrind"] / row["instructions_per_message"]
        )
    return row


def syscall_figures(contender: Contender, load: Load) -> dict[str, Any]:
    try:
        small, large, _ = counted(contender, strace, syscalls, load)
    except (RuntimeError, OSError) as error:
        return {"syscalls_unavailable": f"under strace: {error}"}
    by_name = {name: per_message(small[name], large[name], load.messages) for name in sorted(small | large)}
    return {
        "syscalls_per_message": per_message(small.total(), large.total(), load.messages),
        "syscalls_by_name": {name: value for name, value in by_name.items() if abs(value) >= 0.005},
    }


def measure(
    chosen: Sequence[Contender], idle_check: bool, with_syscalls: bool = True, only: Load | None = None
) -> dict[str, dict[str, Any]]:
    """server -> load key -> row, two runs at once."""
    jobs = [(c, load) for c in chosen for load in loads_of(c.name) if only in (None, load)]

    def one(job: tuple[Contender, Load]) -> dict[str, Any]:
        contender, load = job
        if reason := contender.skipped() or cannot_hold(contender.name, load):
            return {"unavailable": reason}
        started = time.monotonic()
        row = measure_one(contender, load, idle_check and load == MAIN, with_syscalls)
        shown = row.get("instructions_per_message", row.get("unavailable"))
        print(
            f"{contender.name} at {load.key}: {shown} ({time.monotonic() - started:.0f} s)", file=sys.stderr
        )
        return row

    figures: dict[str, dict[str, Any]] = {c.name: {} for c in chosen}
    with ThreadPoolExecutor(PARALLEL) as pool:
        for (contender, load), row in zip(jobs, pool.map(one, jobs), strict=True):
            figures[contender.name][load.key] = row
    return figures


def hotspots(chosen: Sequence[Contender], top: int = 12) -> dict[str, dict[str, float]]:
    """Question (a): instructions per message per function of the ANNOTATED servers, the
    functions where they differ most first."""
    found = {c.name: c for c in chosen}
    pair = [found[name] for name in ANNOTATED if name in found]
    if len(pair) < 2:
        return {}
    with ThreadPoolExecutor(PARALLEL) as pool:
        ours, theirs = pool.map(lambda c: functions_per_message(c, MAIN), pair)
    names = sorted(ours.keys() | theirs.keys(), key=lambda n: -abs(ours.get(n, 0) - theirs.get(n, 0)))
    return {
        name: {c.name: profile.get(name, 0.0) for c, profile in zip(pair, (ours, theirs), strict=True)}
        for name in names[:top]
    }


# --- the timed part of question (b) ---------------------------------------------------

SWITCH_LOAD = replace(BULK, rounds=20)


def switches(chosen: Sequence[Contender]) -> dict[str, dict[str, float]]:
    """Context switches and CPU time per message, bare (no counter), by the same N/2N
    difference, from the server's rusage once reaped: every thread's, the dead ones' too.
    Timed: run it alone, on a quiet machine."""
    found: dict[str, dict[str, float]] = {}
    for contender in chosen:
        if contender.name not in BULK_SERVERS:
            continue
        usage = []
        for rounds in (SWITCH_LOAD.rounds, 2 * SWITCH_LOAD.rounds):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            serve_wrapped(contender, SEED, SWITCH_LOAD, rounds, settled=False)  # timed: run free
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            usage.append(
                {
                    "voluntary": after.ru_nvcsw - before.ru_nvcsw,
                    "involuntary": after.ru_nivcsw - before.ru_nivcsw,
                    "cpu_us": 1e6 * (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime),
                }
            )
        small, large = usage
        found[contender.name] = {k: per_message(small[k], large[k], SWITCH_LOAD.messages) for k in small}
    return found


# --- the cost model ---------------------------------------------------------------------


def measured_from(bench_run: Mapping[str, Any]) -> str:
    return f"{bench_run['command']}, started {bench_run['started']}"


def measured_cpu(bench_run: Mapping[str, Any], load: Load = FIT_LOAD) -> dict[str, float]:
    """server -> server CPU µs per round trip, from a bench run, at load (throughput)."""
    return {
        row["server"]: row["server_cpu_us_per_round_trip"]
        for row in bench_run["results"]
        if row["scenario"] == "throughput"
        and row["connections"] == load.connections
        and row["size"] == load.size
        and row.get("server_cpu_us_per_round_trip") is not None
    }


# Servers that hand each message to a thread or a process of its own: the wakeups, context
# switches and futex calls that costs are scheduling, which neither counter sees (syscalls
# count a futex as cheaply as a send). The fit leaves them out, and shows how far above
# its line they sit.
HANDED_OFF = ("blocking", "forking", "threadpool", "socketserver threads", "socketserver forking")


def fit(points: Mapping[str, tuple[float, float, float]]) -> dict[str, Any]:
    """µs ≈ k + a·instructions + b·syscalls, least squares over server -> (instructions,
    syscalls, µs), leaving out HANDED_OFF. k is what one message costs whoever asks for it:
    the kernel's TCP work on loopback, the same in a send() as inside io_uring_enter. Every
    server gets a prediction; those left out show the scheduling the line does not hold."""
    fitted = [n for n in points if n not in HANDED_OFF]
    design = np.array([[1.0, points[n][0], points[n][1]] for n in fitted], dtype=float)
    measured = np.array([points[n][2] for n in fitted], dtype=float)
    coefficients, *_ = np.linalg.lstsq(design, measured, rcond=None)
    k, a, b = (float(c) for c in coefficients)
    residual = float(np.sum((measured - design @ coefficients) ** 2))
    total = float(np.sum((measured - measured.mean()) ** 2))
    return {
        "k_us_per_message": k,
        "a_us_per_instruction": a,
        "b_us_per_syscall": b,
        "r_squared": 1 - residual / total if total else 0.0,
        "fitted": fitted,
        "servers": {
            n: {"measured_us": float(us), "predicted_us": k + a * instructions + b * syscalls}
            for n, (instructions, syscalls, us) in points.items()
        },
    }


def fit_points(
    figures: Mapping[str, Mapping[str, Any]], cpu: Mapping[str, float]
) -> dict[str, tuple[float, float, float]]:
    """The servers that have all three figures at the fit's load."""
    points = {}
    for name, loads in figures.items():
        row = loads.get(FIT_LOAD.key, {})
        if name in cpu and "instructions_per_message" in row and "syscalls_per_message" in row:
            points[name] = (row["instructions_per_message"], row["syscalls_per_message"], cpu[name])
    return points


def cost_model(run: Mapping[str, Any]) -> dict[str, Any] | None:
    """The fit of a saved run, or None where fewer than three servers can be fitted."""
    points = fit_points(run["figures"], run.get("measured_cpu", {}))
    return fit(points) if len(set(points) - set(HANDED_OFF)) >= 3 else None


def repeat_spread(
    first: Mapping[str, Mapping[str, Any]], second: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, float]]:
    """server -> load key -> how far the second run's instructions per message lie from the
    first's, in % of the first."""
    spread: dict[str, dict[str, float]] = {}
    for name, loads in first.items():
        for key, row in loads.items():
            other = second.get(name, {}).get(key, {})
            if "instructions_per_message" in row and "instructions_per_message" in other:
                a, b = row["instructions_per_message"], other["instructions_per_message"]
                spread.setdefault(name, {})[key] = 100 * (b - a) / a
    return spread


def thousands(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def cell(row: Mapping[str, Any], field: str, digits: int = 0) -> str:
    value = row.get(field)
    return "n/a" if value is None else f"{value:,.{digits}f}"


def cost_rows(run: Mapping[str, Any]) -> list[list[str]]:
    """The table: a row per server, both loads' counts, and the fit."""
    model = cost_model(run) or {"servers": {}}
    rows = []
    for name, loads in run["figures"].items():
        main, headline = loads.get(MAIN.key, {}), loads.get(HEADLINE.key, {})
        fitted = model["servers"].get(name, {})
        rows.append(
            [
                name,
                cell(main, "instructions_per_message"),
                cell(main, "syscalls_per_message", 2),
                cell(headline, "instructions_per_message"),
                cell(headline, "syscalls_per_message", 2),
                cell(fitted, "measured_us", 1),
                cell(fitted, "predicted_us", 1),
            ]
        )
    return rows


COST_HEADER = [
    "server",
    f"instructions / msg, {MAIN.key}",
    f"syscalls / msg, {MAIN.key}",
    f"instructions / msg, {HEADLINE.key}",
    f"syscalls / msg, {HEADLINE.key}",
    f"CPU µs / round trip, measured ({FIT_LOAD.key})",
    "predicted",
]


# Why a server's count follows the clock, where its design makes it so.
POLLS = {
    "nonblocking": "it tries every socket on each pass and sleeps between empty passes, so how "
    "many empty passes a message meets, and their instructions, depend on time",
}


def beyond_note(spread: Mapping[str, Mapping[str, float]]) -> str:
    """The servers whose two counts lie more than 1% apart, and why, where known."""
    beyond = [name for name, loads in spread.items() if abs(loads.get(MAIN.key, 0.0)) > 1]
    if not beyond:
        return ""
    reasons = "".join(f" {name}: {POLLS[name]}." for name in beyond if name in POLLS)
    return f" Beyond 1%: {', '.join(beyond)}.{reasons}"


def hog_rows(run: Mapping[str, Any]) -> list[list[str]]:
    """A row per server measured twice at MAIN: both counts, and how far apart."""
    spread = repeat_spread(run["figures"], run.get("figures_with_hog", {}))
    return [
        [
            name,
            cell(run["figures"][name][MAIN.key], "instructions_per_message"),
            cell(run["figures_with_hog"][name][MAIN.key], "instructions_per_message"),
            f"{loads[MAIN.key]:+.2f}%",
        ]
        for name, loads in spread.items()
        if MAIN.key in loads
    ]


def unavailable(run: Mapping[str, Any]) -> list[str]:
    return [
        f"- {name} at {key}: {row[why]}"
        for name, loads in run["figures"].items()
        for key, row in loads.items()
        for why in ("unavailable", "syscalls_unavailable")
        if why in row
    ]


def short_function(name: str) -> str:
    """callgrind_annotate's `/build/path/file.c:function [/path/lib.so]` as `file.c:function`."""
    return name.split(" [", 1)[0].rsplit("/", 1)[-1]


def question_a(run: Mapping[str, Any]) -> str:
    ours, theirs = ANNOTATED
    rows = run["figures"]
    if MAIN.key not in rows.get(ours, {}) or MAIN.key not in rows.get(theirs, {}):
        return "Not measured in this run."
    a = rows[ours][MAIN.key].get("instructions_per_message")
    b = rows[theirs][MAIN.key].get("instructions_per_message")
    if a is None or b is None:
        return "Not measured in this run."
    verdict = "more" if a > b else "no more"
    text = (
        f"At {MAIN.key}, lock-step, asyncio_io executes {a:,.0f} instructions per message and the minimal "
        f"Protocol echo {b:,.0f}: asyncio_io costs {verdict} ({a - b:+,.0f} instructions, "
        f"{100 * (a - b) / b:+.1f}%)."
    )
    text += syscalls_beside(rows[ours][MAIN.key], rows[theirs][MAIN.key])
    spots = run.get("hotspots", {})
    if spots:
        lines = [
            [
                name,
                f"{v.get(ours, 0):,.0f}",
                f"{v.get(theirs, 0):,.0f}",
                f"{v.get(ours, 0) - v.get(theirs, 0):+,.0f}",
            ]
            for name, v in spots.items()
        ]
        lines = [[short_function(line[0]), *line[1:]] for line in lines]
        text += (
            " Where, per function (callgrind_annotate, self cost, the same N/2N difference), the "
            "functions that differ most:\n\n"
            + markdown_table(["function", ours, theirs, "difference"], lines)
        )
    return text


def syscalls_beside(ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> str:
    """(a)'s other half: the calls asyncio_io makes per message that the minimal echo does not."""
    mine, other = ours.get("syscalls_by_name", {}), theirs.get("syscalls_by_name", {})
    more = {name: mine[name] - other.get(name, 0.0) for name in mine}
    extra = {name: count for name, count in more.items() if count >= 0.5}
    if not extra:
        return " Its syscalls per message are the minimal echo's."
    listed = ", ".join(f"`{name}` {count:.2f}" for name, count in sorted(extra.items()))
    return (
        f" Its syscalls, which callgrind does not count, differ more: {ours['syscalls_per_message']:.2f} per "
        f"message against {theirs['syscalls_per_message']:.2f}, the extra ones being {listed}. asyncio "
        "reads each message into a fresh bytes object of its read size (256 KiB), then shrinks it. glibc "
        "serves a block that large with its own `mmap` while its dynamic threshold is still the default "
        "(128 KiB), and raises the threshold only when such a block is freed whole; a block shrunk "
        "(`mremap`) before it is freed never raises it. So whether every read costs an `mmap`, an "
        "`mremap` and a `munmap`, and the page faults behind them, depends on what the process freed "
        "before: the minimal echo's history raised the threshold, asyncio_io's did not. The kernel time "
        "of those calls, not the interpreter's instructions, is the difference; it is the likeliest "
        "reason [growth.md](growth.md) shows asyncio_io far above the other loops (not checked there)."
    )


def question_b(run: Mapping[str, Any]) -> str:
    ours, theirs = BULK_SERVERS
    rows = run["figures"]
    a, b = rows.get(ours, {}).get(BULK.key, {}), rows.get(theirs, {}).get(BULK.key, {})
    if "instructions_per_message" not in a or "instructions_per_message" not in b:
        return "Not measured in this run."
    names = sorted(set(a.get("syscalls_by_name", {})) | set(b.get("syscalls_by_name", {})))
    table = [
        ["instructions", cell(a, "instructions_per_message"), cell(b, "instructions_per_message")],
        ["syscalls", cell(a, "syscalls_per_message", 2), cell(b, "syscalls_per_message", 2)],
        *[[f"`{n}`", *(by_name(row, n) for row in (a, b))] for n in names],
    ]
    timed = run.get("switches", {})
    if ours in timed and theirs in timed:
        for field, label in (
            ("voluntary", "voluntary context switches"),
            ("involuntary", "involuntary context switches"),
            ("cpu_us", "CPU µs (user + system)"),
        ):
            table.append(
                [label + " (timed, bare)", f"{timed[ours][field]:.2f}", f"{timed[theirs][field]:.2f}"]
            )
    parts = [
        f"Per message at {BULK.label} ({BULK.connections:,} connections, each round one message on each):",
        markdown_table(["per message", ours, theirs], table),
        bulk_reading(a, b, timed.get(ours), timed.get(theirs), run.get("switches_command")),
        CODE_DIFFERENCE,
    ]
    return "\n\n".join(parts)


# What the two servers do per message, read from their code (no figure: those are above).
CODE_DIFFERENCE = (
    "**In the code.** Per message, socketserver threads' handler "
    "(tests/third_party/socketserver_echo.py) is one `recv()` and one `sendall()`, whose "
    "loop runs in C. blocking (blocking/server.py) calls each `recv()` and `send()` through "
    "`IdleTimer.unless_idle()` (a Python call and a `try` each, so that --idle-timeout can "
    "tell a slow reader from an idle one), and loops over `send()` in Python, slicing what is "
    "left. Both start a thread per connection, not per message; blocking raises the GIL's "
    "switch interval (`sys.setswitchinterval`, for ten thousand threads), socketserver keeps "
    "the default."
)


def by_name(row: Mapping[str, Any], name: str) -> str:
    """One syscall's calls per message; 0 where strace saw none, n/a where it did not run."""
    if "syscalls_by_name" not in row:
        return "n/a"
    return f"{row['syscalls_by_name'].get(name, 0):.2f}"


def bulk_reading(
    a: Mapping[str, Any],
    b: Mapping[str, Any],
    timed_a: Mapping[str, float] | None,
    timed_b: Mapping[str, float] | None,
    command: str | None,
) -> str:
    """What the counts (and, when measured, the timed run) say about blocking vs socketserver."""
    ours, theirs = BULK_SERVERS
    ia, ib = a["instructions_per_message"], b["instructions_per_message"]
    text = (
        f"**Counted.** {ours} executes {ia / ib:.2f}× the instructions of {theirs} per message "
        f"({ia - ib:+,.0f})"
        + (
            f" and makes {cell(a, 'syscalls_per_message', 2)} syscalls per message against "
            f"{cell(b, 'syscalls_per_message', 2)}."
            if "syscalls_per_message" in a and "syscalls_per_message" in b
            else f"; {theirs if 'syscalls_per_message' in a else ours}: syscalls not counted (below)."
        )
    )
    if timed_a is None or timed_b is None:
        return text + " The timed part (`--switches`) was not run."
    ratio = timed_a["cpu_us"] / timed_b["cpu_us"]
    verdict = (
        f"so {ours} does spend more CPU per message"
        if ratio > 1
        else f"so here the premise does not hold: {ours} spends no more CPU per message than {theirs}"
    )
    return text + (
        f"\n\n**Timed** (bare, no counter: `{command}`). {ours} takes {timed_a['cpu_us']:.1f} µs of CPU "
        f"per message against {timed_b['cpu_us']:.1f} ({ratio:.2f}×), {verdict}; it switches context "
        f"{timed_a['voluntary']:.2f} times per message of its own accord against {timed_b['voluntary']:.2f}, "
        f"and is preempted {timed_a['involuntary']:.2f} times against {timed_b['involuntary']:.2f}."
    )


def page(run: Mapping[str, Any]) -> str:
    """docs/bench/cost.md from a saved run: every figure below comes from cost.json."""
    model = cost_model(run)
    spread = repeat_spread(run["figures"], run.get("figures_with_hog", {}))
    worst = max((abs(v) for loads in spread.values() for v in loads.values()), default=None)
    shares = [
        (name, row["time_proportional_share"])
        for name, loads in run["figures"].items()
        for row in loads.values()
        if "time_proportional_share" in row
    ]
    worst_share = max(shares, key=lambda item: item[1], default=None)
    parts = [
        "# What one echoed message costs: instructions and syscalls",
        f"Command: `{run['command']}`. Machine: {machine_line(run['machine'])}; "
        f"{run['machine']['valgrind']}, "
        f"{run['machine']['strace']}. Started {run['started']}. Raw figures: [cost.json](cost.json).",
        (__doc__ or "").split("\n\n", 1)[1].split("Then a cost model")[0].strip(),
        f"Loads: {MAIN.key} ({MAIN.rounds:,} rounds in the N run), "
        f"{HEADLINE.key} ({HEADLINE.rounds} rounds), "
        f"and {BULK.label} ({BULK.rounds} rounds) for question (b).",
        markdown_table(COST_HEADER, cost_rows(run)),
        "![instructions and syscalls per message](charts/cost.png)",
    ]
    if model:
        parts.append(cost_model_text(run, model))
    if worst is not None:
        parts.append(
            f"**Repeatability.** The {MAIN.key} instruction counts were measured again with a CPU hog "
            "on CPU 1 "
            f"(`{shlex.join(HOG)}`); the largest difference from the first run is {worst:.2f}% "
            f"({'within' if worst <= 1 else 'beyond'} 1%).{beyond_note(spread)}\n\n"
            + markdown_table(
                ["server", f"instructions / msg, {MAIN.key}", "again, with a CPU hog", "difference"],
                hog_rows(run),
            )
        )
    if worst_share is not None:
        parts.append(
            f"**Time-proportional work.** Each server left idle {run['idle_seconds']:g} s under callgrind "
            "shows what its timers cost per second; times the seconds per message under callgrind, "
            "that is at "
            f"most {100 * worst_share[1]:.2f}% of the instructions per message ({worst_share[0]})."
        )
    parts += [
        "## (a) Does asyncio_io cost more than the minimal Protocol echo?",
        question_a(run),
        f"## (b) Why is blocking slower than socketserver threads at {BULK.label}?",
        question_b(run),
    ]
    for again in run.get("remeasured", []):
        parts.append(
            f"Measured again, and merged in: {', '.join(again['servers'])}, by `{again['command']}`, "
            f"started {again['started']}."
        )
    if missing := unavailable(run):
        parts += ["Not measured (n/a):", "\n".join(missing)]
    return "\n\n".join(parts) + "\n"


def cost_model_text(run: Mapping[str, Any], model: Mapping[str, Any]) -> str:
    servers = model["servers"]
    above = [
        f"{name} {servers[name]['measured_us'] - servers[name]['predicted_us']:+.1f} µs"
        for name in HANDED_OFF
        if name in servers
    ]
    return (
        f"**The cost model.** Least squares over the {len(model['fitted'])} servers that serve every "
        f"message in the thread that waited for it: CPU µs per round trip ({FIT_LOAD.key}) ≈ "
        f"{model['k_us_per_message']:.2f} µs + {model['a_us_per_instruction'] * 1000:.3f} µs per 1,000 "
        f"instructions + {model['b_us_per_syscall']:.3f} µs per syscall; R² = {model['r_squared']:.2f}. "
        "The constant is the kernel's TCP work for one message on loopback, whoever asks for it "
        "(the C floor pays little else); an instruction costs a fraction of a nanosecond; a syscall's "
        "entry and exit, beyond that work, little. The servers that hand each message to a thread or "
        "a process of their own are left out: the scheduling that costs them (wakeups, context "
        "switches) is counted nowhere, and the futex calls that are counted cost less than a send. The "
        f"line misses them, by (measured minus predicted): {', '.join(above)}. "
        f"The measured figures are the committed bench run's ({run['measured_from']})."
    )


def chart(run: Mapping[str, Any], path: Path) -> None:
    """Instructions and syscalls per message per server (MAIN load), and predicted vs measured."""
    rows = [
        (name, loads[MAIN.key])
        for name, loads in run["figures"].items()
        if "instructions_per_message" in loads.get(MAIN.key, {})
    ]
    rows.sort(key=lambda item: item[1]["instructions_per_message"])
    fig, (left, middle, right) = plt.subplots(
        1, 3, figsize=(15, 6.5), gridspec_kw={"width_ratios": [3, 2, 3]}
    )
    names = [name for name, _ in rows]
    y = range(len(rows))
    left.barh(y, [row["instructions_per_message"] for _, row in rows], color="tab:blue")
    left.set_yticks(list(y), names)
    left.set_xlabel(f"instructions per message ({MAIN.key})")
    left.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    middle.barh(y, [row.get("syscalls_per_message", 0) for _, row in rows], color="tab:orange")
    middle.set_yticks(list(y), [])
    middle.set_xlabel(f"syscalls per message ({MAIN.key})")
    for axis in (left, middle):
        axis.grid(axis="x", alpha=0.3)
    if model := cost_model(run):
        points = model["servers"]
        low = min(min(p["measured_us"], p["predicted_us"]) for p in points.values()) * 0.8
        top = max(max(p["measured_us"], p["predicted_us"]) for p in points.values()) * 1.25
        by_cost = sorted(points, key=lambda name: points[name]["measured_us"])
        ends = {by_cost[0], by_cost[-1]}
        placed: list[tuple[float, float]] = []
        for name, point in sorted(points.items(), key=lambda item: item[1]["predicted_us"]):
            x, y = point["measured_us"], point["predicted_us"]
            right.scatter(x, y, color="tab:red" if name in HANDED_OFF else "tab:green")
            # The cluster on the line is named in the table; here, the points the line misses
            # by more than a tenth, and the cheapest and the dearest.
            if abs(y - x) <= 0.1 * x and name not in ends:
                continue
            crowded = sum(abs(x / px - 1) < 0.15 and abs(y / py - 1) < 0.06 for px, py in placed)
            offset, side = [((5, 2), "left"), ((-5, 2), "right"), ((5, -10), "left")][min(crowded, 2)]
            right.annotate(name, (x, y), fontsize=8, xytext=offset, textcoords="offset points", ha=side)
            placed.append((x, y))
        right.plot([low, top], [low, top], color="grey", linestyle="--", linewidth=1)
        right.set_xscale("log")
        right.set_yscale("log")
        right.set_xlim(low, top)
        right.set_ylim(low, top)
        for axis in (right.xaxis, right.yaxis):
            axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            axis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if v in (6, 8, 15, 30, 40) else ""))
        right.set_xlabel(f"measured server CPU µs per round trip ({FIT_LOAD.key})")
        right.set_ylabel("predicted: k + a·instructions + b·syscalls")
        right.set_title(
            f"green: fitted (R² = {model['r_squared']:.2f}); red: a thread or process per message",
            fontsize=10,
        )
        right.grid(alpha=0.3)
    fig.suptitle(
        f"Cost per echoed message, counted: {run['started']}, {machine_line(run['machine'])}", fontsize=9
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def write_page(run: Mapping[str, Any], folder: Path) -> None:
    (folder / "cost.md").write_text(page(run))
    chart(run, folder / "charts" / "cost.png")
    print(f"wrote {folder / 'cost.md'} and {folder / 'charts' / 'cost.png'}")


# --- the run -------------------------------------------------------------------------

HOG = ("taskset", "-c", "1", "nice", "-n", "0", "sh", "-c", "while :; do :; done")


@contextlib.contextmanager
def cpu_hog() -> Iterator[None]:
    """A busy loop on CPU 1 while the block runs: counts must not notice it."""
    hog = subprocess.Popen(HOG)
    try:
        yield
    finally:
        hog.kill()
        hog.wait()


def machine() -> dict[str, Any]:
    """The machine (toolkit.machine), and the counters' versions: counts need no pinning."""
    valgrind = subprocess.run(
        ["valgrind", "--version"], capture_output=True, text=True, check=True, timeout=10
    )
    strace = subprocess.run(["strace", "-V"], capture_output=True, text=True, check=True, timeout=10)
    return toolkit.machine.describe() | {
        "pinning": "not pinned: counted, not timed",
        "valgrind": valgrind.stdout.strip(),
        "strace": strace.stdout.splitlines()[0],
    }


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=COMMAND, description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--servers", help="comma-separated names (default: every model and peer)")
    parser.add_argument("--output", type=Path, default=RUNS, help="where cost.json, cost.md and the chart go")
    parser.add_argument("--render", action="store_true", help="measure nothing: redraw from cost.json")
    parser.add_argument(
        "--idle-check",
        action="store_true",
        help=f"also count each server left idle {IDLE_SECONDS:g} s: what its timers cost (slower)",
    )
    parser.add_argument(
        "--merge", action="store_true", help="replace only these servers' rows in the saved cost.json"
    )
    parser.add_argument(
        "--switches", action="store_true", help="only question (b)'s timed part, into cost.json"
    )
    return parser.parse_args(argv)


def chosen_servers(names: str | None) -> list[Contender]:
    everyone = [c for c in contenders() if c.name != "prefork 1 worker"]  # prefork counts every worker
    if names is None:
        return everyone
    wanted = names.split(",")
    if unknown := set(wanted) - {c.name for c in everyone}:
        raise SystemExit(f"error: unknown server(s) {', '.join(sorted(unknown))}")
    return [c for c in everyone if c.name in wanted]


def merged(run: Mapping[str, Any], fresh: Mapping[str, Any]) -> dict[str, Any]:
    """The saved run with fresh's servers measured again: their rows replaced, the rest
    kept, and the re-measuring recorded (the page names it under the run's own heading)."""
    out = dict(run)
    for key in ("figures", "figures_with_hog"):
        out[key] = {**run.get(key, {}), **fresh[key]}
    if fresh["hotspots"]:
        out["hotspots"] = fresh["hotspots"]
    again = {"servers": list(fresh["figures"]), "command": fresh["command"], "started": fresh["started"]}
    out["remeasured"] = [*run.get("remeasured", []), again]
    return out


def main(argv: Sequence[str] | None = None) -> int:
    options = parse(argv)
    options.output.mkdir(parents=True, exist_ok=True)
    saved = options.output / "cost.json"
    if options.render:
        run = json.loads(saved.read_text())
    elif options.switches:
        run = json.loads(saved.read_text())
        run["switches"] = switches(chosen_servers(options.servers))
        run["switches_command"] = shlex.join(
            [*COMMAND.split(), *(argv if argv is not None else sys.argv[1:])]
        )
        saved.write_text(json.dumps(run, indent=1) + "\n")
    else:
        chosen = chosen_servers(options.servers)
        command = shlex.join([*COMMAND.split(), *(argv if argv is not None else sys.argv[1:])])
        started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        fresh = {
            "command": command,
            "started": started,
            "machine": machine(),
            "loads": {load.key: asdict(load) for load in (MAIN, HEADLINE, BULK)},
            "idle_seconds": IDLE_SECONDS,
        }
        fresh["figures"] = measure(chosen, idle_check=options.idle_check)
        with cpu_hog():
            fresh["figures_with_hog"] = measure(chosen, idle_check=False, with_syscalls=False, only=MAIN)
        fresh["hotspots"] = hotspots(chosen)
        run = merged(json.loads(saved.read_text()), fresh) if options.merge else fresh
        saved.write_text(json.dumps(run, indent=1) + "\n")
    # The fit's third figure, from the committed bench run: taken anew whenever that run is.
    bench_run = json.loads(FULL_RUN.read_text())
    if run.get("measured_from") != measured_from(bench_run):
        run["measured_from"] = measured_from(bench_run)
        run["measured_cpu"] = measured_cpu(bench_run)
        saved.write_text(json.dumps(run, indent=1) + "\n")
    write_page(run, options.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
