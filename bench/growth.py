"""python3 -m bench.growth: how each server's cost scales with the work, in two studies.

    python3 -m bench.growth --output docs/bench     both studies: about 9 minutes on 2 cores
    python3 -m bench.growth --study growth --servers epoll_mux,poll_mux
    python3 -m bench.growth --replot docs/bench          measure nothing: redraw the pages

growth: the server CPU time per echoed message (user + system, its whole process tree)
with 100 connections active in lock step (64 B, one message in flight each) while the
rest sit idle, for 1, 10, 100, 1,000 and 10,000 connections in all. A wakeup of select()
or poll() costs O(connections watched), one of epoll O(connections ready): the chart
(growth.png) shows which each model pays. The server is pinned to one CPU and the load
generator to another, as in python3 -m bench; a model declaring a cap below a point
stops there.

prefork: round trips per second against prefork's workers (1, 2, 4 and the default, one
per CPU), with nothing pinned, so the workers can use every core; the load generator
needs one too, and the table shows the CPU each side used.

Why not a scenario of python3 -m bench: the bench keeps every server alive at once and
reconnects for each run, taking turns run by run; here a point holds 10,000 connections,
which cost more to open than the runs do, so each point gets a fresh server whose
connections are opened once and measured several times (bench.loadgen.connected); and
prefork's study must not pin the server at all.

Writes growth.json and prefork.json (every raw figure, and the machine), growth.md and
charts/growth.png, charts/prefork.png into --output; docs/prefork.md's scaling section is
rendered from prefork.json by python3 -m bench.report.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import sys
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench import growth_charts, report
from bench.__main__ import machine, progress
from bench.contenders import Contender, contenders
from bench.loadgen import Load, Measured, connected
from bench.measure import ServerUsage, Settings, pin, raw, size_label, summarize
from bench.report import machine_line, markdown_table, number
from toolkit.measure import server_fds, server_rss
from toolkit.process import ServerProcess, over_cap

TOTALS = (1, 10, 100, 1000, 10_000)  # connections held, the x axis
ACTIVE, SIZE = 100, 64  # connections in lock step at each point (fewer where fewer are held)
PEERS = ("C epoll (floor)", "uvloop Protocol")  # for scale: the same loop without Python, and uvloop's
# What one wakeup of the model's wait costs, the hypothesis the chart tests: the groups are
# its panels. (The registry's Family is the IO-model map's: select_mux is "readiness" there,
# as epoll_mux is, but its wakeup scans every socket.)
GROUPS: dict[str, tuple[str, ...]] = {
    "scans every connection watched": ("nonblocking", "select_mux", "poll_mux"),
    "the kernel reports the ready ones": (
        "epoll_mux",
        "selectors_mux",
        "asyncio_io",
        "gevent_io",
        "sigio",
        "uring_io",
        "threadpool",
        "prefork",
    ),
    "a thread or process per connection": ("blocking", "forking"),
}
PREFORK_LOADS = ((100, 64), (1000, 1024))  # connections, bytes: the loads the bench's targets name
PREFORK_REFERENCE = "epoll_mux"  # one process, the loop every prefork worker runs
# The prefork message says the round trips followed the CPU given when their ratio to it
# varies less than this (max ÷ min), and the round trips themselves more than twice as much.
FOLLOWS = 1.5


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python3 -m bench.growth", description=__doc__.split("\n\n")[0])
    parser.add_argument("--study", choices=("growth", "prefork", "both"), default="both")
    parser.add_argument(
        "--servers", help="growth: comma-separated names (default: every model and the peers)"
    )
    parser.add_argument("--totals", default=",".join(map(str, TOTALS)), help="growth: (default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=1.0, help="per measured run (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per point; the median is reported")
    parser.add_argument("--output", type=Path, default=Path("reports/bench"), help="default: %(default)s")
    parser.add_argument("--replot", action="store_true", help="measure nothing: redraw from --output's JSON")
    return parser.parse_args(argv)


def point(contender: Contender, load: Load, settings: Settings) -> dict[str, Any]:
    """One server, fresh, under one load: connect once, a warm-up run, then the measured runs."""
    total = load.connections + load.idle
    result: dict[str, Any] = {"server": contender.name, "connections": total, "active": load.connections}
    result |= {"size": load.size, "failure": None, "runs": []}
    result["failure"] = over_cap(contender.spec, total)
    if result["failure"]:
        return result | {"cap": contender.spec.connection_cap}
    with ServerProcess(contender.spec) as server:
        pin(server.pid, settings.server_cpu)
        idle_rss, idle_descriptors = server_rss(server.pid), server_fds(server.pid)
        runs: list[tuple[Measured, ServerUsage]] = []
        try:
            with connected(
                *server.address,
                load,
                cpu=settings.loadgen_cpu,
                window=ServerUsage(server.pid, idle_descriptors),
            ) as session:
                for repeat in range(settings.repeats + 1):  # the first warms up, and is dropped
                    usage = ServerUsage(server.pid, idle_descriptors)
                    measured = session.measure(usage)
                    if measured.failure:
                        result["failure"] = f"the load generator says: {measured.failure}"
                        break
                    if repeat:
                        runs.append((measured, usage))
        except RuntimeError as error:  # it could not connect, or stopped
            result["failure"] = result["failure"] or str(error)
        result["runs"] = raw(runs)
        return result if result["failure"] else result | summarize(runs, total, idle_rss)


def group_of(name: str) -> str:
    return next((group for group, members in GROUPS.items() if name in members), "peers, for scale")


def growth_servers(options: argparse.Namespace) -> list[Contender]:
    everyone = {c.name: c for c in contenders()}
    names = [name for members in GROUPS.values() for name in members] + list(PEERS)
    if options.servers:
        wanted = options.servers.split(",")
        unknown = set(wanted) - set(names)
        if unknown:
            raise SystemExit(
                f"error: unknown server(s) {', '.join(sorted(unknown))}; choose from {', '.join(names)}"
            )
        names = [name for name in names if name in wanted]
    return [everyone[name] for name in names]


def header(argv: list[str] | None, settings: Settings) -> dict[str, Any]:
    """What every JSON this tool writes starts with."""
    return {
        "command": shlex.join(
            ["python3", "-m", "bench.growth", *(argv if argv is not None else sys.argv[1:])]
        ),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(settings),
        "settings": {"seconds": settings.seconds, "warmup": settings.seconds, "repeats": settings.repeats},
    }


def growth(options: argparse.Namespace, argv: list[str] | None) -> dict[str, Any]:
    cpus = sorted(os.sched_getaffinity(0))
    pinned = len(cpus) > 1
    settings = Settings(
        options.seconds,
        options.seconds,
        options.repeats,
        cpus[0] if pinned else None,
        cpus[1] if pinned else None,
    )
    servers, totals = growth_servers(options), [int(part) for part in options.totals.split(",")]
    run = header(argv, settings) | {"active": ACTIVE, "size": SIZE, "totals": totals}
    run["servers"] = [
        {
            "name": c.name,
            "kind": c.kind,
            "group": group_of(c.name),
            "command": c.argv_shown(),
            "skipped": c.skipped(),
        }
        for c in servers
    ]
    run["results"] = []
    runnable = [c for c in servers if not c.skipped()]
    for index, contender in enumerate(runnable):
        progress(index, len(runnable), contender.name)
        for total in totals:
            active = min(ACTIVE, total)
            load = Load(active, SIZE, 1, settings.seconds, idle=total - active)
            run["results"].append(point(contender, load, settings))
    progress(len(runnable), len(runnable), "done")
    return run


def prefork(options: argparse.Namespace, argv: list[str] | None) -> dict[str, Any]:
    settings = Settings(options.seconds, options.seconds, options.repeats, None, None)
    # Unpinned, the scheduler may run the load generator on the core of the worker it
    # wakes; pinned to the last CPU, it keeps a core of its own. Both, for the difference.
    placements = [None, sorted(os.sched_getaffinity(0))[-1]]
    everyone = {c.name: c for c in contenders()}
    run = header(argv, settings) | {
        "loads": [list(load) for load in PREFORK_LOADS],
        "default_workers": os.cpu_count(),
    }
    servers: list[tuple[str, int | None]] = [
        (f"prefork {n} worker{'s' if n > 1 else ''}", n) for n in prefork_workers()
    ]
    servers.append((PREFORK_REFERENCE, None))
    run["results"] = []
    steps = [(loadgen_cpu, server) for loadgen_cpu in placements for server in servers]
    for index, (loadgen_cpu, (name, workers)) in enumerate(steps):
        progress(index, len(steps), f"{name}, load generator on CPU {loadgen_cpu}")
        contender = everyone[PREFORK_REFERENCE if workers is None else "prefork"]
        if workers is not None:
            assert contender.spec.command is not None
            command = (*contender.spec.command, "--workers", str(workers))
            contender = replace(contender, name=name, spec=replace(contender.spec, command=command))
        for connections, size in PREFORK_LOADS:
            load = Load(connections, size, 1, settings.seconds)
            result = point(contender, load, replace(settings, loadgen_cpu=loadgen_cpu))
            run["results"].append(result | {"workers": workers, "loadgen_cpu": loadgen_cpu})
    progress(len(steps), len(steps), "done")
    return run


def prefork_workers() -> list[int]:
    return sorted({1, 2, 4, os.cpu_count() or 1})


# Rendering: growth.md, the prefork section, and the charts, all from the JSON alone.
Run = Mapping[str, Any]


def growth_table(run: Run) -> str:
    totals = run["totals"]
    rows, notes = [], []
    for server in run["servers"]:
        if server["skipped"]:
            notes.append(f"- {server['name']}: skipped, {server['skipped']}")
            continue
        row = [report.server_label(run, server["name"]), server["group"]]
        for total in totals:
            result = find(run, server["name"], total)
            if result is None:
                row.append("—")
            elif result["failure"]:
                row.append("capped" if "cap of" in result["failure"] else "failed")
                notes.append(f"- {server['name']} at {total:,}: {result['failure']}")
            else:
                row.append(number(result["server_cpu_us_per_round_trip"], 1))
        rows.append(row)
    head = ["server", "its wait", *(f"{total:,}" for total in totals)]
    table = markdown_table(head, rows).replace("| --- " * len(head), "|---|---" + "|---:" * len(totals))
    return "\n\n".join([table, *(["\n".join(notes)] if notes else [])])


def find(run: Run, server: str, connections: int, size: int | None = None) -> Mapping[str, Any] | None:
    for result in run["results"]:
        if (result["server"], result["connections"]) == (server, connections) and size in (
            None,
            result["size"],
        ):
            return dict(result)
    return None


def growth_factors(run: Run) -> dict[str, tuple[float, float, int]]:
    """Each server's cost at ACTIVE connections held and at the most it held: (µs, µs, most)."""
    factors = {}
    for server in run["servers"]:
        base = find(run, server["name"], ACTIVE)
        done = [r for r in run["results"] if r["server"] == server["name"] and not r["failure"]]
        if base is None or base["failure"] or not done:
            continue
        last = max(done, key=lambda r: r["connections"])
        if last["connections"] > ACTIVE:
            cost = "server_cpu_us_per_round_trip"
            factors[server["name"]] = (base[cost], last[cost], last["connections"])
    return factors


def growth_message(run: Run) -> str:
    """The chart's message in a paragraph, every figure in it from the run."""
    factors = growth_factors(run)
    groups = {server["name"]: server["group"] for server in run["servers"]}
    sentences = []
    for group in dict.fromkeys(groups.values()):
        members = sorted(
            ((name, *figures) for name, figures in factors.items() if groups[name] == group),
            key=lambda member: member[1] / member[2],
        )
        if not members:
            continue
        growths = [last / base for _, base, last, _ in members]
        each = ", ".join(f"{name} {last / base:.1f}× ({base:.1f} → {last:.1f} µs at {most:,})"
                         for name, base, last, most in members)  # fmt: skip
        spread = f"{min(growths):.1f}× to {max(growths):.1f}×" if len(members) > 1 else f"{growths[0]:.1f}×"
        sentences.append(f"{group[0].upper()}{group[1:]}, {spread}: {each}.")
    single = [r for r in run["results"] if r["connections"] == 1 and not r["failure"]]
    busy = [r for r in run["results"] if r["connections"] == ACTIVE and not r["failure"]]
    intro = (
        f"With the same {ACTIVE} connections active and the rest idle, the CPU per echoed message "
        f"changed from {ACTIVE} connections held to the most each held as its wait predicts, by:"
    )
    parts = [intro, *sentences]
    if single and busy:
        low, high = (f(r["server_cpu_us_per_round_trip"] for r in single) for f in (min, max))
        low_busy, high_busy = (f(r["server_cpu_us_per_round_trip"] for r in busy) for f in (min, max))
        parts.append(
            f"With a single connection every server pays more per message ({low:.1f} to {high:.1f} µs, "
            f"against {low_busy:.1f} to {high_busy:.1f} µs with {ACTIVE}): each round trip is a wakeup of "
            f"its own, where {ACTIVE} in lock step share their wakeups."
        )
    return " ".join(parts)


def growth_markdown(run: Run) -> str:
    settings = run["settings"]
    return (
        "\n\n".join(
            [
                "# Cost per message as the connections grow",
                f"`{run['command']}` on {machine_line(run['machine'])}, started {run['started']}.",
                f"Server CPU µs (user + system, its whole process tree) per echoed message, "
                f"{run['active']} connections active in lock step ({size_label(run['size'])}, one message "
                f"in flight each; all of them where fewer are held) and the rest idle, by connections held. "
                f"Each figure: the median of {settings['repeats']} runs of {settings['seconds']:g} s, "
                "after a warm-up run, on a fresh server process holding those connections throughout.",
                growth_table(run),
                "![CPU per message against connections held](charts/growth.png)",
                growth_message(run),
            ]
        )
        + "\n"
    )


def prefork_section(run: Run) -> str:
    """docs/prefork.md's generated section: the table, the chart, and what the run shows."""
    rows = []
    for connections, size in run["loads"]:
        for result in (r for r in run["results"] if (r["connections"], r["size"]) == (connections, size)):
            load = f"{connections:,} × {size_label(size)}, {growth_charts.placement(result['loadgen_cpu'])}"
            name = result["server"]
            if result["workers"] == run["default_workers"]:
                name += " (default: one per CPU)"
            if result["failure"]:
                rows.append([load, name, f"failed: {result['failure']}"])
                continue
            rows.append(
                [
                    load,
                    name,
                    number(result["round_trips_per_second"]),
                    number(result["server_cpu_percent"]),
                    number(result["client_cpu_percent"]),
                    number(result["server_cpu_us_per_round_trip"], 1),
                ]
            )
    head = [
        "load",
        "server",
        "round trips/s",
        "server CPU %",
        "loadgen CPU %",
        "server CPU µs per round trip",
    ]
    settings, cores = run["settings"], run["machine"]["cores"]
    intro = (
        f"`{run['command']}` on {machine_line(run['machine'])}, started {run['started']}. "
        f"Each figure: the median of {settings['repeats']} runs of {settings['seconds']:g} s after a warm-up "
        f"run, on a fresh server; CPU % is of one core, so {cores} cores give {100 * cores:,}% in all "
        f"([raw](bench/prefork.json))."
    )
    return "\n\n".join(
        [
            intro,
            markdown_table(head, rows).replace("| --- " * len(head), "|---|---" + "|---:" * (len(head) - 2)),
            "![prefork: workers against throughput](bench/charts/prefork.png)",
            prefork_message(run),
        ]
    )


def prefork_message(run: Run) -> str:
    """What the run shows, its figures from the JSON: each worker count against 1 worker,
    and how closely the round trips followed the CPU both sides were given."""
    parts = []
    cases = dict.fromkeys((r["connections"], r["size"], r["loadgen_cpu"]) for r in run["results"])
    for connections, size, loadgen_cpu in cases:
        results = {
            r["workers"]: r
            for r in run["results"]
            if (r["connections"], r["size"], r["loadgen_cpu"]) == (connections, size, loadgen_cpu)
            and not r["failure"]
        }
        one, more = (
            results.get(1),
            [r for w, r in sorted(results.items(), key=lambda i: i[0] or 0) if w and w > 1],
        )
        if one and more:
            ratios = ", ".join(f"{r['workers']} workers {rate(r) / rate(one):.2f}×" for r in more)
            where = growth_charts.placement(loadgen_cpu)
            parts.append(f"{connections:,} × {size_label(size)}, {where}: {ratios}")
    done = [r for r in run["results"] if not r["failure"]]
    if not done:
        return ""
    text = f"Round trips against 1 worker's: {'; '.join(parts)}." if parts else ""
    together = [r["server_cpu_percent"] + r["client_cpu_percent"] for r in done]
    per_cpu = [rate(r) / both for r, both in zip(done, together, strict=True)]
    rates = [rate(r) for r in done]
    text += (
        f" Both sides together used {min(together):.0f}% to {max(together):.0f}% of one core "
        f"({100 * run['machine']['cores']:,}% in all), and the round trips ranged from {min(rates):,.0f} to "
        f"{max(rates):,.0f} per second; per 1% of a core used by the two together, from {min(per_cpu):,.0f} "
        f"to {max(per_cpu):,.0f}."
    )
    if max(per_cpu) / min(per_cpu) < FOLLOWS and max(rates) / min(rates) > 2 * FOLLOWS:
        text += (
            " So the round trips followed the CPU the scheduler gave the two sides, not the number of "
            "workers: where the server and the load generator shared a core, the run was slow whatever "
            "the workers."
        )
    return text.strip()


def rate(result: Mapping[str, Any]) -> float:
    return float(result["round_trips_per_second"])


def write(run: Run, output: Path, name: str) -> None:
    output.mkdir(parents=True, exist_ok=True)
    (output / f"{name}.json").write_text(json.dumps(run, indent=1) + "\n")
    print(f"wrote {output}/{name}.json")


def render(output: Path) -> None:
    """growth.md and both charts, from what output holds."""
    if (output / "growth.json").exists():
        run = report.load(output / "growth.json")
        (output / "growth.md").write_text(growth_markdown(run))
        growth_charts.growth(run, output / "charts" / "growth.png")
    if (output / "prefork.json").exists():
        growth_charts.prefork(report.load(output / "prefork.json"), output / "charts" / "prefork.png")


def main(argv: list[str] | None = None) -> int:
    options = parse(argv)
    if not options.replot:
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # 10,000 connections, both ends
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        if options.study in ("growth", "both"):
            write(growth(options, argv), options.output, "growth")
        if options.study in ("prefork", "both"):
            write(prefork(options, argv), options.output, "prefork")
    render(options.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
