"""python3 -m bench: every server through every scenario, in one run, compared as ratios.

    python3 -m bench --quick     about 2 minutes: the loads the targets name, idle CPU, and
                                the six models with the three peers the targets name
    python3 -m bench             the full run: about 13 minutes on 2 cores
    python3 -m bench --servers epoll_mux,"uvloop Protocol" --scenarios throughput

Writes results.json (every raw figure, and the machine), results.md and charts/*.png
into --output, and prints the tables.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from bench import charts, report
from bench.contenders import Contender, contenders
from bench.measure import Scenario, Settings, measure

KINDS = ("pingpong", "throughput", "inflight", "hold", "idle")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python3 -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer servers and loads: about 2 minutes")
    parser.add_argument("--servers", help="comma-separated names (default: all installed)")
    parser.add_argument("--list", action="store_true", help="name every server, and why one cannot run here")
    parser.add_argument(
        "--scenarios", help=f"comma-separated, of: {','.join(KINDS)} (default: all; quick: throughput,idle)"
    )
    parser.add_argument("--connections", default="10,100,1000", help="throughput: (default: %(default)s)")
    parser.add_argument("--sizes", default="64,1024,65536", help="throughput: bytes (default: %(default)s)")
    parser.add_argument("--inflight", type=int, default=8, help="messages in flight (default: %(default)s)")
    parser.add_argument("--hold", type=int, default=10_000, help="hold: connections (default: %(default)s)")
    parser.add_argument("--idle", type=int, default=1000, help="idle: connections (default: %(default)s)")
    parser.add_argument("--seconds", type=float, help="per measured run (default: 0.6, quick 0.5)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure; the median is reported")
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


def scenarios(options: argparse.Namespace) -> list[Scenario]:
    kinds = (options.scenarios or ("throughput,idle" if options.quick else ",".join(KINDS))).split(",")
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise SystemExit(
            f"error: unknown scenario(s) {', '.join(sorted(unknown))}; choose from {', '.join(KINDS)}"
        )
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
    }
    return [scenario for kind in kinds for scenario in chosen[kind]]


def choose(options: argparse.Namespace) -> list[Contender]:
    everyone = contenders()
    if not options.servers:
        if options.quick:  # the six, and the peers the targets name
            named = {target.reference for target in report.TARGETS}
            return [c for c in everyone if c.kind == "model" or c.name in named]
        return everyone
    wanted = options.servers.split(",")
    unknown = set(wanted) - {c.name for c in everyone}
    if unknown:
        names = ", ".join(c.name for c in everyone)
        raise SystemExit(f"error: unknown server(s) {', '.join(sorted(unknown))}; choose from {names}")
    return [c for c in everyone if c.name in wanted]


def machine(settings: Settings) -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        model_lines = [
            line for line in Path("/proc/cpuinfo").read_text().splitlines() if "model name" in line
        ]
        cpu = model_lines[0].split(":", 1)[1].strip()
    except (OSError, IndexError):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "kernel": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
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
    cpus = sorted(os.sched_getaffinity(0))
    settings = Settings(
        seconds=options.seconds or (0.5 if options.quick else 0.6),
        warmup=options.warmup or 0.2,
        repeats=options.repeats,
        # Two CPUs at least: the server on one, the load generator on another, so
        # neither steals the other's time and the figures are the server's own.
        server_cpu=cpus[0] if len(cpus) > 1 else None,
        loadgen_cpu=cpus[1] if len(cpus) > 1 else None,
    )
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # the hold scenario needs 10,000+
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    chosen, plan = choose(options), scenarios(options)
    runnable = [c for c in chosen if not c.skipped()]
    results: dict[str, Any] = {
        "command": shlex.join(["python", "-m", "bench", *(argv if argv is not None else sys.argv[1:])]),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(settings),
        "settings": {"seconds": settings.seconds, "warmup": settings.warmup, "repeats": settings.repeats},
        "servers": [
            {"name": c.name, "kind": c.kind, "command": c.argv_shown(), "skipped": c.skipped()}
            for c in chosen
        ],
        "results": [],
    }
    for contender in chosen:
        if contender.skipped():
            print(f"skipping {contender.name}: {contender.skipped()}", file=sys.stderr)
    total, done = sum(scenario.runs(settings) for scenario in plan) * len(runnable), 0

    def step(what: str) -> None:
        nonlocal done
        progress(done, total, what)
        done += 1

    for scenario in plan:
        results["results"] += measure(runnable, scenario, settings, step)
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
