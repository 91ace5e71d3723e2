"""Syscalls per echoed message, for each of the six IO models, measured with strace.

Each server runs twice under `strace -f -c` (-f: blocking's threads too; -c: a count per
syscall): once started and stopped with no client (the baseline: imports, the listener,
the shutdown), once serving a fixed workload from a plain Python client. The difference,
divided by the messages echoed, is what serving costs in syscalls. Rerun from the
repository root (Linux, strace installed); it writes docs/syscalls.md, its figures to
docs/syscalls.json, and prints the table:

    python3 -m docs.syscalls           # 100 connections x 100 messages, about 15 s
    python3 -m docs.syscalls --check   # 5 x 5, written to a temporary folder instead
    python3 -m docs.syscalls --render  # no strace: the page again from docs/syscalls.json

The notes under the table are written from the figures, so they say what this run shows.
The pages that quote its figures (docs/comparison.md's syscall row) are rewritten from
docs/syscalls.json by `python3 -m bench.report`, which also renders this page.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from toolkit import registry
from toolkit.process import READY_LINE
from toolkit.registry import ROOT as REPO_ROOT

COMMAND = "python3 -m docs.syscalls"
SAVED = REPO_ROOT / "docs/syscalls.json"  # the last full run's figures: --render redraws the page
TIMEOUT = 10.0  # seconds: for a server to start, one client operation, a server to exit
MESSAGE = bytes(range(256)) * 4  # 1 KiB, every byte value

# The table's rows: a label and the syscalls it counts; the rest are summed in "others".
ROWS = {
    "accept, accept4": ("accept", "accept4"),
    "recvfrom, recv": ("recvfrom", "recv"),
    "sendto, send": ("sendto", "send"),
    "select, pselect6": ("select", "pselect6"),
    "poll, ppoll": ("poll", "ppoll"),  # poll_mux's wait
    "epoll_wait, epoll_pwait": ("epoll_wait", "epoll_pwait"),
    "epoll_ctl": ("epoll_ctl",),
    "io_uring_enter": ("io_uring_enter",),  # uring_io's accepts, recvs and sends ride on it
    "rt_sigtimedwait": ("rt_sigtimedwait",),  # sigio's wait: one signal per readiness event
    "futex": ("futex",),
    "clock_nanosleep, nanosleep": ("clock_nanosleep", "nanosleep"),
    "mmap, mremap, munmap": ("mmap", "mremap", "munmap"),
    "close": ("close",),
}


@dataclass(frozen=True)
class Workload:
    connections: int  # opened, and held, at once
    messages: int  # per connection

    @property
    def echoed(self) -> int:
        return self.connections * self.messages

    def describe(self) -> str:
        return (
            f"{self.connections} connections opened and held at once; {self.messages} rounds in which "
            f"each in turn sends {len(MESSAGE)} B and reads the echo back in full (one message in flight "
            f"at a time); then each half-closes, reads the server's EOF and closes: {self.echoed:,} "
            "echoed messages."
        )


FULL = Workload(connections=100, messages=100)
SMALL = Workload(connections=5, messages=5)


def parse_summary(text: str) -> tuple[Counter[str], int]:
    """Calls per syscall, and failed calls in all, from strace -c's table, whose rows read
    '% time  seconds  usecs/call  calls  [errors]  syscall'."""
    calls: Counter[str] = Counter()
    failed = 0
    for fields in map(str.split, text.splitlines()):
        if len(fields) in (5, 6) and fields[0][0].isdigit() and fields[-1] != "total":
            calls[fields[-1]] = int(fields[3])
            failed += int(fields[4]) if len(fields) == 6 else 0
    return calls, failed


def parse_failures(text: str) -> Counter[str]:
    """Failed calls per syscall, from the same table: the rows that have an errors column."""
    rows = (fields for fields in map(str.split, text.splitlines()) if len(fields) == 6)
    return Counter({f[-1]: int(f[4]) for f in rows if f[0][0].isdigit() and f[-1] != "total"})


def traced(model: str, workload: Workload | None) -> tuple[Counter[str], Counter[str]]:
    """Calls and failed calls per syscall of the model run under strace, serving workload
    (None: no client), then stopped with SIGTERM."""
    with tempfile.TemporaryDirectory() as tmp:
        summary, out, err = Path(tmp, "summary"), Path(tmp, "stdout"), Path(tmp, "stderr")
        command = ["strace", "-f", "-c", "-o", str(summary), sys.executable, "-m", model, "--port", "0"]
        with out.open("wb") as stdout, err.open("wb") as stderr:  # a new session: cleanup ends all of it
            strace = subprocess.Popen(
                command, cwd=REPO_ROOT, stdout=stdout, stderr=stderr, start_new_session=True
            )
        try:
            deadline = time.monotonic() + TIMEOUT
            while not (ready := READY_LINE.search(out.read_text(errors="replace"))):
                if strace.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{model}: no ready line in {TIMEOUT}s: {err.read_text()}")
                time.sleep(0.01)
            # strace's child is the server; a signal to strace itself would kill the server.
            server = int(Path(f"/proc/{strace.pid}/task/{strace.pid}/children").read_text().split()[0])
            if workload is not None:
                idle_threads = len(os.listdir(f"/proc/{server}/task"))
                serve(int(ready["port"]), workload)
                # Let blocking's client threads end first: strace may hand a signal to any
                # thread of a traced process, and one that lands elsewhere leaves accept() waiting.
                deadline = time.monotonic() + TIMEOUT
                while len(os.listdir(f"/proc/{server}/task")) > idle_threads and time.monotonic() < deadline:
                    time.sleep(0.01)
            os.kill(server, signal.SIGTERM)
            status = strace.wait(TIMEOUT)  # strace writes its summary and exits with the server's status
        finally:
            with contextlib.suppress(ProcessLookupError):  # gone already, as it should be
                os.killpg(strace.pid, signal.SIGKILL)
            strace.wait(TIMEOUT)
        if status != 0:
            raise RuntimeError(f"{model} under strace exited with {status}: {err.read_text()}")
        text = summary.read_text()
        return parse_summary(text)[0], parse_failures(text)


def serve(port: int, workload: Workload) -> None:
    """The client side of the workload; every socket operation times out after TIMEOUT."""
    with contextlib.ExitStack() as stack:
        connect = socket.create_connection
        clients = [
            stack.enter_context(connect(("127.0.0.1", port), TIMEOUT)) for _ in range(workload.connections)
        ]
        for _ in range(workload.messages):
            for sock in clients:
                sock.sendall(MESSAGE)
                echoed = b""
                while len(echoed) < len(MESSAGE) and (chunk := sock.recv(len(MESSAGE) - len(echoed))):
                    echoed += chunk
                if echoed != MESSAGE:
                    raise RuntimeError(f"echo differs: sent {len(MESSAGE)} B, received {len(echoed)} B")
        for sock in clients:
            sock.shutdown(socket.SHUT_WR)
            if sock.recv(1) != b"":
                raise RuntimeError("data after the last echo, where EOF was due")


def measure(models: Sequence[str], workload: Workload) -> dict[str, dict[str, float]]:
    """model -> row label -> syscalls per echoed message, the baseline subtracted."""
    figures = {}
    for model in models:
        (base_calls, base_failed), (calls, failed) = traced(model, None), traced(model, workload)
        calls.subtract(base_calls)  # subtract(), unlike -, keeps negative counts
        failed.subtract(base_failed)
        rows = {label: sum(calls[name] for name in names) / workload.echoed for label, names in ROWS.items()}
        total = calls.total() / workload.echoed
        rows["others"] = total - sum(rows.values())
        rows["total"] = total
        rows["of which failed"] = failed.total() / workload.echoed
        rows |= {f"{FAILED}{name}": count / workload.echoed for name, count in failed.items()}
        figures[model] = rows
    return figures


FAILED = "failed: "  # a measure() key: failed calls of one syscall per message, e.g. "failed: futex"
TABLE_ROWS = [*ROWS, "others", "total", "of which failed"]
BELOW_ZERO = r"\*"  # marks a figure shown as 0.00 that came out below zero


def shown(value: float) -> str:
    """Two decimals; below zero: 0.00, marked (+ 0.0: never "-0.00")."""
    rounded = round(value, 2)
    return f"{max(rounded, 0) + 0.0:.2f}{BELOW_ZERO if rounded < 0 else ''}"


def table(figures: dict[str, dict[str, float]]) -> str:
    """Models as columns, syscalls as rows; a row that is zero for every model is left out.
    A figure below zero (noise in the baseline, see negatives()) is shown as 0.00, marked."""
    models, rows = list(figures), list(figures.values())
    lines = ["| per echoed message | " + " | ".join(models) + " |", "|---" + "|---:" * len(models) + "|"]
    for label in TABLE_ROWS:
        if all(abs(row[label]) < 0.005 for row in rows):
            continue
        bold = "**" if label == "total" else ""
        cells = (f"{bold}{shown(row[label])}{bold}" for row in rows)
        lines.append(f"| {bold}{label}{bold} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# Why a syscall fails in these servers, for each that strace counted as failed.
WHY_FAILED = {
    "futex": "`futex`: a wait that returns at once with EAGAIN, because the lock the thread was about to "
    "sleep on "
    "(the GIL, mostly) was released between its check and its wait, so it goes on without sleeping; "
    "nothing is lost (`strace -f -Z -e trace=futex` lists them)",
    "recvfrom": "`recvfrom`: a `recv()` on a socket with nothing to read yet, EAGAIN",
    "accept4": "`accept4`: an `accept()` with no client waiting, EAGAIN",
}


def per_message(value: float) -> str:
    return f"{max(value, 0):.2f}"


def failures(figures: dict[str, dict[str, float]]) -> str:
    """Which syscalls failed, per model, and why each does."""
    seen: list[str] = []
    found = []
    for model, rows in figures.items():
        failed = {key.removeprefix(FAILED): v for key, v in rows.items() if key.startswith(FAILED)}
        shown = [f"`{name}` {value:.2f}" for name, value in sorted(failed.items()) if value >= 0.005]
        seen += [name for name, value in sorted(failed.items()) if value >= 0.005 and name not in seen]
        if shown:
            found.append(f"{model} {', '.join(shown)}")
    if not found:
        return "- **Failed calls:** none beyond those of the run with no client."
    reasons = "; ".join(
        WHY_FAILED.get(name, f"`{name}`: its errors are listed by `strace -f -Z`") for name in seen
    )
    return f'- **Failed calls** ("of which failed"), per message: {"; ".join(found)}. Why: {reasons}.'


def negatives(figures: dict[str, dict[str, float]], workload: Workload) -> str:
    """What a figure below zero means, naming each; "" if there is none."""
    below = [
        f"{model}'s {label} ({value:.2f})"
        for model, rows in figures.items()
        for label in TABLE_ROWS
        if round(value := rows[label], 2) < 0
    ]
    if not below:
        return ""
    return (
        f"{BELOW_ZERO} Below zero, shown as 0.00: {', '.join(below)}. The run with no client made more "
        "of these calls than the run with the workload: start-up and shutdown vary by a few calls from "
        f"run to run, and divided by {workload.echoed:,} messages that noise lands either side of zero."
    )


def notes(figures: dict[str, dict[str, float]], workload: Workload) -> str:
    """What the numbers show, written from them: each claim about a figure follows its value."""
    total = {model: rows["total"] for model, rows in figures.items()}
    loops = ("select_mux", "selectors_mux", "epoll_mux")
    fewer = "fewer" if total["nonblocking"] < min(total[m] for m in loops) else "no fewer"
    memory = figures["asyncio_io"]["mmap, mremap, munmap"]
    if memory >= 1:
        asyncio_memory = (
            "asyncio reads with a 256 KiB buffer (`max_size`), above glibc malloc's mmap threshold, so "
            f"in this run each read also cost an `mmap`, an `mremap` (shrinking it to the 1 KiB "
            f"received) and a `munmap`: {per_message(memory)} calls per message."
        )
    else:
        asyncio_memory = (
            "asyncio reads with a 256 KiB buffer (`max_size`); in this run malloc found it on its heap "
            f"with no syscall ({per_message(memory)} `mmap`, `mremap`, `munmap` per message)."
        )
    return "\n".join(
        [
            "What the numbers show. Every model does the same useful work per message, one `recvfrom`",
            "that brings it in and one `sendto` that echoes it; the rest is waiting, and its cost.",
            "",
            "- **blocking** waits inside `recvfrom` itself, so it needs no other call. Its `futex` calls "
            f"({per_message(figures['blocking']['futex'])} per message here) are GIL hand-offs, as many as "
            "the times the next client's thread wakes while the last one still holds the GIL, so they vary "
            "from run to run. Its thread per connection (`clone3`, the stack's `mmap` and `munmap`...) is "
            "spread over the connection's messages.",
            "- **nonblocking** never waits on a socket: each pass tries `accept` and then `recv` on every "
            "client, ready or not, and each try that finds nothing fails with EAGAIN. In this run it made "
            f"{fewer} calls per message than the multiplexers ({total['nonblocking']:.2f}): the client, "
            "not slowed by strace as the server is, answers fast and in the order the passes visit the "
            "sockets, so a busy pass seldom comes up empty. A client that pauses makes passes that fail "
            "once per idle client, then a `clock_nanosleep`: this column depends on timing most.",
            "- **select_mux** asks the kernel first: one `pselect6` per pass, then only calls that succeed. "
            "The count hides its cost: each call hands over and scans every descriptor it watches, "
            f"{workload.connections + 2} here (the clients, the listener, the wakeup socket).",
            "- **selectors_mux**, **epoll_mux** and **asyncio_io** wait in `epoll_wait`, interest kept in "
            "the kernel: `epoll_ctl` twice per connection (register, unregister), never per message, since "
            f"every echo fits the send buffer at once. {asyncio_memory} Whether a read maps fresh memory is "
            "malloc's choice, not the model's: glibc maps a block that size afresh each time until the "
            "process frees a large mapped block whole, and then raises its threshold above that size "
            "(see `mallopt(3)`, M_MMAP_THRESHOLD). So the same server, on the same Python, can show 3 "
            "or 0 here from one run to the next.",
            failures(figures),
            "",
            "With one message in flight, every wakeup finds one socket ready; with many in flight, one",
            "`select` or `epoll_wait` would serve several, and its count per message would fall below 1.",
        ]
    )


def page(run: dict[str, Any]) -> str:
    """docs/syscalls.md from a saved run: the table, and notes written from its figures."""
    workload, figures = Workload(**run["workload"]), run["figures"]
    below = negatives(figures, workload)
    return (
        f"# Syscalls per echoed message\n\nMeasured, not estimated, by `docs/syscalls.py`. To regenerate "
        f"(Linux, strace installed, from the repository root):\n\n    {COMMAND}\n\n"
        f"Workload: {workload.describe()}\n\nThis run: `{run['command']}` on {run['machine']}, started "
        f"{run['started']}. Raw figures: [syscalls.json](syscalls.json).\n\n{table(figures)}\n\n"
        "Each server ran under `strace -f -c` twice, with the workload and with no client at all; the "
        "table is the difference, divided by the messages echoed, so start-up and shutdown do not count, "
        f"and each connection's accept, close (and thread) are spread over its {workload.messages} "
        f"messages.\n\n{notes(figures, workload)}\n" + (f"\n{below}\n" if below else "")
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--check", action="store_true", help="a 5 x 5 workload, written to a temporary file")
    parser.add_argument(
        "--render", action="store_true", help=f"measure nothing: rewrite the page from {SAVED.name}"
    )
    options = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp()) if options.check else REPO_ROOT / "docs"
    output, saved = folder / "syscalls.md", folder / SAVED.name
    started = time.monotonic()
    started_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    if options.render:
        run = json.loads(SAVED.read_text())
    else:
        workload = SMALL if options.check else FULL
        for model in registry.models():
            if reason := model.missing():
                print(f"skipping {reason}", file=sys.stderr)
        figures = measure([model.name for model in registry.models() if not model.missing()], workload)
        strace = subprocess.run(["strace", "-V"], capture_output=True, text=True, timeout=TIMEOUT, check=True)
        machine = (
            f"Linux {platform.release()} ({os.cpu_count()} cores), Python {platform.python_version()}, "
            f"{strace.stdout.splitlines()[0]}"
        )
        command = " ".join([COMMAND, *(argv if argv is not None else sys.argv[1:])])
        run = {"command": command, "started": started_at, "machine": machine}
        run |= {"workload": asdict(workload), "figures": figures}
        saved.write_text(json.dumps(run, indent=1) + "\n")
    output.write_text(page(run))
    print(table(run["figures"]))
    print(f"wrote {output} in {time.monotonic() - started:.0f} s")
    if not options.check:
        print("python3 -m bench.report rewrites the pages that quote it")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
