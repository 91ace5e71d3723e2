"""python3 -m bench: every server through every scenario, in one run, compared as ratios.

    python3 -m bench --quick     about 2½ minutes: the verdicts. Each target's server and
                                reference in paired runs (bench.paired), and the idle target
    python3 -m bench             the full run, about 40 minutes on 2 cores: every server
                                through every scenario (the tables and charts), then the
                                targets in more and longer pairs, for narrower intervals
    python3 -m bench --servers epoll_mux,"uvloop Protocol" --scenarios throughput

The scenario tables take turns server by server, run by run, and report medians: they
show every figure but judge nothing. The targets are judged on paired runs only: one
ratio per pair, their median and its confidence interval (bench.stats), and a verdict
only where the interval allows one; docs/bench/noise.md measured which run lengths and
pair counts buy how narrow an interval on this machine.

Writes results.json (every raw figure, and the machine), results.md and charts/*.png
into --output, and prints the tables.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import toolkit.machine
from bench import charts, report
from bench.contenders import Contender, contenders
from bench.measure import Scenario, Settings, measure
from bench.paired import measure_target

KINDS = ("pingpong", "throughput", "inflight", "hold", "idle", "targets")
# Paired runs for the targets, (seconds per run, pairs), chosen from docs/bench/noise.md.
QUICK_PAIRS = (0.5, 5)
FULL_PAIRS = (3.0, 9)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python3 -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="the targets in paired runs and the idle target: about 2½ minutes",
    )
    parser.add_argument("--servers", help="comma-separated names (default: all installed)")
    parser.add_argument("--list", action="store_true", help="name every server, and why one cannot run here")
    parser.add_argument(
        "--scenarios", help=f"comma-separated, of: {','.join(KINDS)} (default: all; quick: targets,idle)"
    )
    parser.add_argument("--connections", default="10,100,1000", help="throughput: (default: %(default)s)")
    parser.add_argument("--sizes", default="64,1024,65536", help="throughput: bytes (default: %(default)s)")
    parser.add_argument("--inflight", type=int, default=8, help="messages in flight (default: %(default)s)")
    parser.add_argument("--hold", type=int, default=10_000, help="hold: connections (default: %(default)s)")
    parser.add_argument("--idle", type=int, default=1000, help="idle: connections (default: %(default)s)")
    parser.add_argument(
        "--seconds", type=float, help="per measured run (default: 0.6, quick 1; idle × repeats)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure; the median is reported")
    parser.add_argument(
        "--pair-seconds",
        type=float,
        help=f"targets: per run of a pair (default: {FULL_PAIRS[0]:g}, quick {QUICK_PAIRS[0]:g})",
    )
    parser.add_argument(
        "--pairs", type=int, help=f"targets: pairs of runs (default: {FULL_PAIRS[1]}, quick {QUICK_PAIRS[1]})"
    )
    parser.add_argument("--warmup", type=float, help="seconds before the runs (default: 0.2)")
    parser.add_argument("--output", type=Path, default=Path("reports/bench"), help="default: %(default)s")
    parser.add_argument(
        "--replot",
        type=Path,
        metavar="RESULTS_JSON",
        help="measure nothing: redraw the tables and charts of a run",
    )
    return parser.parse_args(argv)


def integers(text: str) -> list[int]:
    return [int(part) for part in text.split(",")]


def kinds(options: argparse.Namespace) -> list[str]:
    chosen = (options.scenarios or ("targets,idle" if options.quick else ",".join(KINDS))).split(",")
    unknown = set(chosen) - set(KINDS)
    if unknown:
        raise SystemExit(
            f"error: unknown scenario(s) {', '.join(sorted(unknown))}; choose from {', '.join(KINDS)}"
        )
    return chosen


def scenarios(options: argparse.Namespace) -> list[Scenario]:
    if options.quick:  # the loads the targets name, and the idle check
        loads = [(100, 64), (1000, 1024)]
    else:
        loads = [(c, s) for s in integers(options.sizes) for c in integers(options.connections)]
    chosen = {
        "pingpong": [Scenario("pingpong", 1)],
        "throughput": [Scenario("throughput", connections, size) for connections, size in loads],
        "inflight": [] if options.quick else [Scenario("inflight", 100, 64, options.inflight)],
        "hold": [] if options.quick else [Scenario("hold", options.hold, repeated=False)],
        "idle": [Scenario("idle", options.idle, inflight=0, repeated=False)],
        "targets": [],  # paired runs, not a scenario: bench.paired
    }
    return [scenario for kind in kinds(options) for scenario in chosen[kind]]


def choose(options: argparse.Namespace) -> list[Contender]:
    everyone = contenders()
    if not options.servers:
        if options.quick:  # the servers the targets name
            named = {name for target in report.TARGETS for name in (target.server, target.reference)}
            return [c for c in everyone if c.name in named | {report.IDLE_TARGET[0]}]
        return everyone
    wanted = options.servers.split(",")
    unknown = set(wanted) - {c.name for c in everyone}
    if unknown:
        names = ", ".join(c.name for c in everyone)
        raise SystemExit(f"error: unknown server(s) {', '.join(sorted(unknown))}; choose from {names}")
    return [c for c in everyone if c.name in wanted]


def machine(settings: Settings) -> dict[str, Any]:
    return {
        **toolkit.machine.describe(),
        "server_cpu": settings.server_cpu,
        "loadgen_cpu": settings.loadgen_cpu,
    }


def progress(done: int, total: int, what: str) -> None:
    """A bar on a terminal; a plain line per step in a log."""
    if sys.stderr.isatty():
        filled = 30 * done // total
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {done}/{total} {what[:60]:<60}")
        if done == total:
            sys.stderr.write("\n")
    else:
        sys.stderr.write(f"[{done}/{total}] {what}\n")
    sys.stderr.flush()


def prepare(seconds: float, warmup: float, repeats: int) -> Settings:
    """Settings on this machine's CPUs, and a descriptor limit a run's connections fit in."""
    cpus = sorted(os.sched_getaffinity(0))
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # the hold scenario needs 10,000+
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return Settings(
        seconds=seconds,
        warmup=warmup,
        repeats=repeats,
        # Two CPUs at least: the server on one, the load generator on another, so
        # neither steals the other's time and the figures are the server's own.
        server_cpu=cpus[0] if len(cpus) > 1 else None,
        loadgen_cpu=cpus[1] if len(cpus) > 1 else None,
    )


def main(argv: list[str] | None = None) -> int:
    options = parse(argv)
    if options.list:
        for contender in contenders():
            skipped = f"  (skipped: {contender.skipped()})" if contender.skipped() else ""
            print(f"{contender.kind:5}  {contender.name}{skipped}")
        return 0
    if options.replot:
        write_reports(json.loads(options.replot.read_text()), options.output)
        return 0
    settings = prepare(
        seconds=options.seconds or (1.0 if options.quick else 0.6),
        warmup=options.warmup or 0.2,
        repeats=options.repeats,
    )
    chosen, plan = choose(options), scenarios(options)
    runnable = [c for c in chosen if not c.skipped()]
    pair_seconds, pair_count = QUICK_PAIRS if options.quick else FULL_PAIRS
    paired_settings = replace(
        settings, seconds=options.pair_seconds or pair_seconds, repeats=options.pairs or pair_count
    )
    by_name = {c.name: c for c in runnable}
    targets = [
        t for t in report.TARGETS if "targets" in kinds(options) and {t.server, t.reference} <= by_name.keys()
    ]
    if options.quick and not options.servers:  # the idle target needs its one server only
        idle_contenders = [c for c in runnable if c.name == report.IDLE_TARGET[0]]
    else:
        idle_contenders = runnable
    results: dict[str, Any] = {
        "command": shlex.join(["python3", "-m", "bench", *(argv if argv is not None else sys.argv[1:])]),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(settings),
        "settings": {"seconds": settings.seconds, "warmup": settings.warmup, "repeats": settings.repeats},
        "target_settings": {
            "seconds": paired_settings.seconds,
            "warmup": paired_settings.warmup,
            "pairs": paired_settings.repeats,
        },
        "servers": [
            {"name": c.name, "kind": c.kind, "command": c.argv_shown(), "skipped": c.skipped()}
            for c in chosen
        ],
        "results": [],
    }
    for contender in chosen:
        if contender.skipped():
            print(f"skipping {contender.name}: {contender.skipped()}", file=sys.stderr)

    def contenders_for(scenario: Scenario) -> list[Contender]:
        return idle_contenders if scenario.kind == "idle" else runnable

    total = sum(scenario.runs(settings) * len(contenders_for(scenario)) for scenario in plan)
    total += 2 * paired_settings.repeats * len(targets)
    done = 0

    def step(what: str) -> None:
        nonlocal done
        progress(done, total, what)
        done += 1

    for scenario in plan:
        results["results"] += measure(contenders_for(scenario), scenario, settings, step)
    if "targets" in kinds(options):
        results["targets"] = [
            measure_target(t, by_name[t.server], by_name[t.reference], paired_settings, step) for t in targets
        ]
    progress(done, total, "done")
    write_reports(results, options.output)
    return 0


def write_reports(results: dict[str, Any], output: Path) -> None:
    output.mkdir(parents=True, exist_ok=True)
    (output / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (output / "results.md").write_text(report.markdown(results))
    drawn = charts.render(results, output / "charts")
    print(report.terminal(results))
    print(f"wrote {output}/results.json, results.md and {len(drawn)} charts in {output}/charts")


if __name__ == "__main__":
    sys.exit(main())
