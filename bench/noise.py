"""The noise study: how wide the targets' intervals are at each run length and pair count.

    python3 -m bench.noise 0.6x3 3x9      run a few targets at each setting (seconds x pairs),
                                         add the runs to docs/bench/noise.json, rewrite noise.md
    python3 -m bench.noise --times 2 1x5  each setting twice, to see how the verdicts move
    python3 -m bench.noise --servers blocking 3x9   only blocking's targets: a shorter chunk
    python3 -m bench.noise                measure nothing: rewrite docs/bench/noise.md

Each setting is one invocation of bench.paired per target, as `python3 -m bench` makes
them; the page sets the intervals' widths side by side, with the wall time they cost,
and says which settings `--quick` and the full run use. Run it on a quiet machine,
a setting or two at a time: every run is kept, with its own command, start and machine.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from bench.__main__ import FULL_PAIRS, QUICK_PAIRS, machine, prepare, progress
from bench.contenders import contenders
from bench.paired import measure_target
from bench.report import (
    RUNS,
    TARGETS,
    describe_target,
    judge,
    machine_line,
    markdown_table,
    rate_ratios,
    ratio_range,
)
from bench.stats import median_interval

SAVED, PAGE = RUNS / "noise.json", RUNS / "noise.md"
# A few targets that stand for the rest: near their goal (the ones a verdict flips on),
# far from it, thread-per-connection and loops, both loads.
STUDIED = [
    t
    for t in TARGETS
    if (t.server, t.reference, t.connections) in {
        ("blocking", "socketserver threads", 100),
        ("blocking", "socketserver threads", 1000),
        ("epoll_mux", "uvloop Protocol", 100),
        ("asyncio_io", "asyncio Protocol", 1000),
        ("poll_mux", "epoll_mux", 100),
    }
]  # fmt: skip
CONCLUSION = f"""\
## What the runs choose

A target within a few percent of its goal gets a verdict only from an interval that
narrow. At 0.6 s × 3 pairs the interval is the three ratios' [min, max], which holds the
median only 75% of the time, and it is still wide: one run that a neighbour slowed
stretches it. At 3 s × 9 it is [x(2), x(8)] at 96.1%, and a few times narrower for the
loops; each target then costs about a minute. The thread-per-connection pairs (blocking
against socketserver threads) stay the widest at every setting: their runs' rates jump
between two levels from one run to the next, and socketserver's accept backlog of 5 makes
each of its runs seconds longer to connect, which pulls a pair's two runs apart in time.

`python3 -m bench --quick` uses {QUICK_PAIRS[0]:g} s × {QUICK_PAIRS[1]} pairs: five
pairs are the fewest whose [min, max] holds the median more than 90% of the time
(93.8%), and at this run length the targets fit in about 2½ minutes. Its intervals are
wide, so a target near its goal reads "cannot tell at this noise" rather than a verdict
the noise can turn over. The full run uses {FULL_PAIRS[0]:g} s × {FULL_PAIRS[1]} pairs,
the longest setting studied, for the narrowest intervals: it decides the loops' targets
near their goals that `--quick` cannot.
"""


def parse_setting(text: str) -> tuple[float, int]:
    seconds, _, pairs = text.partition("x")
    return float(seconds), int(pairs)


def study(
    settings: Sequence[tuple[float, int]], times: int, servers: set[str] | None, argv: Sequence[str]
) -> list[dict[str, Any]]:
    studied = [t for t in STUDIED if servers is None or t.server in servers]
    by_name = {c.name: c for c in contenders()}
    base = prepare(seconds=0, warmup=0.2, repeats=0)
    runs, total, done = [], len(settings) * times * len(studied), 0
    for seconds, pairs in settings:
        for _ in range(times):
            paired = replace(base, seconds=seconds, repeats=pairs)
            run: dict[str, Any] = {
                "command": shlex.join(["python3", "-m", "bench.noise", *argv]),
                "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "machine": machine(paired),
                "seconds": seconds,
                "pairs": pairs,
                "targets": [],
            }
            for target in studied:
                progress(done, total, f"{seconds:g} s × {pairs}: {describe_target(target)}")
                done += 1
                server, reference = by_name[target.server], by_name[target.reference]
                run["targets"].append(measure_target(target, server, reference, paired, lambda _: None))
            runs.append(run)
    progress(done, total, "done")
    return runs


def rows(saved: Mapping[str, Any]) -> list[list[str]]:
    """One row per target and setting: each repetition's median (interval) and verdict."""
    cells: dict[tuple[str, float, int], list[str]] = {}
    widths: dict[tuple[str, float, int], list[float]] = {}
    walls: dict[tuple[str, float, int], list[float]] = {}
    for run in saved["runs"]:
        for paired in run["targets"]:
            target = next(t for t in TARGETS if (t.server, t.reference, t.connections, t.size) == (
                paired["server"], paired["reference"], paired["connections"], paired["size"]))  # fmt: skip
            key = (describe_target(target), run["seconds"], run["pairs"])
            if paired["failure"]:
                cells.setdefault(key, []).append(f"failed: {paired['failure']}")
                continue
            interval = median_interval(rate_ratios(paired))
            verdict = judge(interval, target.at_least)
            cells.setdefault(key, []).append(f"{interval.median:.2f}× ({ratio_range(interval)}) {verdict}")
            widths.setdefault(key, []).append(interval.high - interval.low)
            walls.setdefault(key, []).append(paired["wall_seconds"])
    table = []
    for key in sorted(cells, key=lambda k: (k[0], k[1] * k[2])):
        goal, seconds, pairs = key
        coverage = median_interval([1.0] * pairs).coverage
        table.append([
            goal,
            f"{seconds:g} s × {pairs}",
            f"{coverage:.1%}",
            "; ".join(cells[key]),
            f"{statistics.mean(widths[key]):.2f}" if key in widths else "—",
            f"{statistics.mean(walls[key]):.1f}" if key in walls else "—",
        ])  # fmt: skip
    return table


HEADER = [
    "target",
    "run length × pairs",
    "interval coverage",
    "median of pairs (interval) and verdict, each time it ran",
    "mean interval width",
    "wall s per target",
]


SUMMARY_HEADER = ["run length × pairs", "interval coverage", "median interval width", "wall s per target"]


def summary(saved: Mapping[str, Any]) -> list[list[str]]:
    """Per setting, over every studied target and time it ran: how wide, and how long."""
    widths: dict[tuple[float, int], list[float]] = {}
    walls: dict[tuple[float, int], list[float]] = {}
    for run in saved["runs"]:
        key = (run["seconds"], run["pairs"])
        for paired in run["targets"]:
            if not paired["failure"]:
                interval = median_interval(rate_ratios(paired))
                widths.setdefault(key, []).append(interval.high - interval.low)
                walls.setdefault(key, []).append(paired["wall_seconds"])
    return [
        [
            f"{seconds:g} s × {pairs}",
            f"{median_interval([1.0] * pairs).coverage:.1%}",
            f"{statistics.median(widths[seconds, pairs]):.2f}",
            f"{statistics.median(walls[seconds, pairs]):.1f}",
        ]
        for seconds, pairs in sorted(widths, key=lambda key: key[0] * key[1])
    ]


def page(saved: Mapping[str, Any]) -> str:
    heading = ["# Noise study: how wide are the targets' intervals?", "The runs:"]
    runs = [
        f"- `{run['command']}`: {run['seconds']:g} s × {run['pairs']} pairs, started {run['started']}, "
        f"on {machine_line(run['machine'])}"
        for run in saved["runs"]
    ]
    tables = [markdown_table(SUMMARY_HEADER, summary(saved)), markdown_table(HEADER, rows(saved))]
    text = "\n\n".join([*heading, "\n".join(runs), *tables, CONCLUSION.strip()])
    return text + "\n"


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(prog="python3 -m bench.noise", description=__doc__, formatter_class=raw)
    parser.add_argument("settings", nargs="*", type=parse_setting, help="SECONDSxPAIRS, e.g. 0.6x3")
    parser.add_argument("--times", type=int, default=1, help="run each setting this many times")
    parser.add_argument("--servers", help="comma-separated: only the targets of these servers (a chunk)")
    options = parser.parse_args(arguments)
    saved = json.loads(SAVED.read_text(encoding="utf-8")) if SAVED.exists() else {"runs": []}
    if options.settings:
        servers = set(options.servers.split(",")) if options.servers else None
        saved["runs"] += study(options.settings, options.times, servers, arguments)
        SAVED.write_text(json.dumps(saved, indent=1) + "\n", encoding="utf-8")
    PAGE.write_text(page(saved), encoding="utf-8")
    print(f"wrote {PAGE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
