"""The benchmark's tables (terminal and Markdown) and its targets, from the results JSON."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.measure import SATURATED, describe, size_label
from bench.stats import Interval, median_interval

Result = Mapping[str, Any]
REFERENCE = "epoll_mux"  # every throughput is also shown as a ratio to this one
LOADGEN_BOUND = "†"
FOOTNOTE = (
    f"{LOADGEN_BOUND} the load generator used ≥ 90% of its core: this figure may be its limit, "
    "not the server's; compare CPU per round trip instead. "
    "Spread: (fastest run - slowest run) ÷ median, over one server's runs."
)


@dataclass(frozen=True)
class Target:
    """server's round trips per second ≥ at_least × reference's, under one load."""

    server: str
    reference: str
    connections: int
    size: int
    at_least: float


TARGETS = [
    Target("epoll_mux", "uvloop Protocol", 100, 64, 1.0),
    Target("epoll_mux", "uvloop Protocol", 1000, 1024, 1.0),
    Target("selectors_mux", "epoll_mux", 100, 64, 0.9),
    Target("selectors_mux", "epoll_mux", 1000, 1024, 0.9),
    Target("select_mux", "epoll_mux", 100, 64, 0.8),
    Target("asyncio_io", "asyncio Protocol", 100, 64, 1.0),
    Target("asyncio_io", "asyncio Protocol", 1000, 1024, 1.0),
    Target("blocking", "socketserver threads", 100, 64, 1.0),
    Target("blocking", "socketserver threads", 1000, 1024, 1.0),
    Target("poll_mux", "epoll_mux", 100, 64, 0.9),
    Target("uring_io", "uvloop Protocol", 100, 64, 1.0),
    Target("uring_io", "uvloop Protocol", 1000, 1024, 1.0),
    Target("gevent_io", "gevent StreamServer", 100, 64, 1.0),
    Target("threadpool", "socketserver threads", 100, 64, 1.0),
    # ForkingTCPServer serves 40 clients at most (max_children): past that it waits in
    # waitpid() for a child to end, and lock-step clients never end. So: 10 clients.
    Target("forking", "socketserver forking", 10, 64, 1.0),
]
IDLE_TARGET = ("nonblocking", 1000, 5.0)  # server, idle connections, most % of a core


def scenario_label(result: Result) -> str:
    return describe(result["scenario"], result["connections"], result["size"], result["inflight"])


def number(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def load_rows(results: Sequence[Result]) -> Iterator[list[str]]:
    reference = next((r for r in results if r["server"] == REFERENCE and not r["failure"]), None)
    for result in results:
        if result["failure"]:
            yield [result["server"], f"failed: {result['failure']}"]
            continue
        rate = result["round_trips_per_second"]
        ratio = rate / reference["round_trips_per_second"] if reference else None
        latency = result["latency_us"]
        yield [
            result["server"],
            number(rate) + (f" {LOADGEN_BOUND}" if result["loadgen_saturated"] else ""),
            "—" if result["spread"] is None else f"{100 * result['spread']:.0f}%",
            number(ratio, 2) + "×" if ratio else "—",
            number(result["megabytes_per_second"], 1),
            " / ".join(number(latency[p]) for p in ("p50", "p99", "p99.9")),
            number(result["server_cpu_percent"]),
            number(result["server_cpu_us_per_round_trip"], 1),
            number(result["client_cpu_percent"]),
            number(result["rss_per_connection_kib"], 1),
        ]


LOAD_HEADER = [
    "server",
    "round trips/s",
    "spread",
    f"× {REFERENCE}",
    "MB/s echoed",
    "latency µs p50 / p99 / p99.9",
    "server CPU %",
    "server CPU µs per round trip",
    "loadgen CPU %",
    "RSS per connection KiB",
]
IDLE_HEADER = ["server", "server CPU % (of one core)", "RSS per connection KiB"]


def idle_rows(results: Sequence[Result]) -> Iterator[list[str]]:
    for result in results:
        if result["failure"]:
            yield [result["server"], f"failed: {result['failure']}"]
        else:
            cpu, memory = result["server_cpu_percent"], result["rss_per_connection_kib"]
            yield [result["server"], number(cpu, 1), number(memory, 1)]


def tables(results: Sequence[Result]) -> Iterator[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) for each scenario, in the order they ran."""
    by_label: dict[str, list[Result]] = {}
    for result in results:
        by_label.setdefault(scenario_label(result), []).append(result)
    for label, group in by_label.items():
        if group[0]["scenario"] == "idle":
            yield label, IDLE_HEADER, list(idle_rows(group))
        else:
            yield label, LOAD_HEADER, list(load_rows(group))


def find(
    results: Sequence[Result], server: str, scenario: str, connections: int, size: int | None = None
) -> Result | None:
    """The server's successful result under that load (any size if None), if the run has one."""
    for result in results:
        load = (result["scenario"], result["connections"]) == (scenario, connections)
        if result["server"] == server and load and size in (None, result["size"]) and not result["failure"]:
            return result
    return None


def describe_target(target: Target) -> str:
    load = f"{target.connections:,} × {size_label(target.size)}"
    return f"{target.server} ≥ {target.at_least:g}× {target.reference}, {load}"


def pairs(paired: Result) -> list[tuple[Result, Result]]:
    """(server's run, reference's run) for each complete pair of a paired result (bench.paired)."""
    by_pair: dict[int, dict[str, Result]] = {}
    for run in paired["runs"]:
        by_pair.setdefault(run["pair"], {})[run["who"]] = run
    return [(both["server"], both["reference"]) for _, both in sorted(by_pair.items()) if len(both) == 2]


def rate_ratios(paired: Result) -> list[float]:
    """Per pair: the server's round trips/s ÷ the reference's."""
    return [
        (ours["round_trips"] / ours["seconds"]) / (theirs["round_trips"] / theirs["seconds"])
        for ours, theirs in pairs(paired)
    ]


def cpu_ratios(paired: Result) -> list[float]:
    """Per pair: the reference's CPU per round trip ÷ the server's (above 1: the server's is less)."""

    def cpu(run: Result) -> float:
        return float(run["server_cpu_seconds"] / run["round_trips"])

    return [cpu(theirs) / cpu(ours) for ours, theirs in pairs(paired)]


def loadgen_saturated(paired: Result) -> bool:
    """Whether the load generator's median share of its core, driving either side, reached SATURATED."""
    shares = [
        statistics.median(r["client_cpu_seconds"] / r["seconds"] for r in paired["runs"] if r["who"] == who)
        for who in {r["who"] for r in paired["runs"]}
    ]
    return any(share >= SATURATED for share in shares)


MET, MISSED, CANNOT_TELL = "met", "missed", "cannot tell at this noise"


def judge(interval: Interval, at_least: float) -> str:
    """Met or missed only when the whole interval says so."""
    if interval.low >= at_least:
        return MET
    if interval.high < at_least:
        return MISSED
    return CANNOT_TELL


def ratio_range(interval: Interval) -> str:
    """Rounded outwards, so a bound just below a goal never prints as the goal itself."""
    low, high = math.floor(interval.low * 100 + 1e-9) / 100, math.ceil(interval.high * 100 - 1e-9) / 100
    return f"{low:.2f}\N{EN DASH}{high:.2f}×"


def target_rows(run: Mapping[str, Any]) -> Iterator[list[str]]:
    """Each target with its paired ratios and verdict, or why it was not measured."""
    measured = {(t["server"], t["reference"], t["connections"], t["size"]): t for t in run.get("targets", [])}
    for target in TARGETS:
        goal = describe_target(target)
        paired = measured.get((target.server, target.reference, target.connections, target.size))
        if paired is None or not pairs(paired):
            failure = paired and paired["failure"]
            yield [goal, f"failed: {failure}" if failure else "not measured in this run", "", ""]
            continue
        ratio = median_interval(rate_ratios(paired))
        bound = f" {LOADGEN_BOUND}" if loadgen_saturated(paired) else ""
        measured_cell = f"{ratio.median:.2f}× ({ratio_range(ratio)}){bound}"
        cheaper = median_interval(cpu_ratios(paired))
        cheaper_cell = f"{cheaper.median:.2f}× ({ratio_range(cheaper)})"
        yield [goal, measured_cell, cheaper_cell, judge(ratio, target.at_least)]
    server, connections, most = IDLE_TARGET
    goal = f"{server} idle CPU < {most:g}% with {connections:,} idle connections"
    idle = find(run["results"], server, "idle", connections)
    if idle is None:
        yield [goal, "not measured in this run", "", ""]
    else:
        cpu = idle["server_cpu_percent"]
        yield [goal, f"{cpu:.1f}%", "", MET if cpu < most else MISSED]


TARGET_HEADER = [
    "target",
    "round trips/s, server ÷ reference: median of pairs (interval)",
    "CPU per round trip, reference ÷ server",
    "verdict",
]


def text_table(header: list[str], rows: list[list[str]]) -> str:
    # A failure row has two cells; its message runs on past the columns, and sets no width.
    full_rows = [row for row in [header, *rows] if len(row) == len(header)]
    widths = [max(len(row[i]) for row in full_rows) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip()
        for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    padded = [row + [""] * (len(header) - len(row)) for row in rows]
    lines = ["| " + " | ".join(row) + " |" for row in [header, ["---"] * len(header), *padded]]
    return "\n".join(lines)


def render(
    results: Mapping[str, Any], table: Callable[[list[str], list[list[str]]], str], heading: str
) -> str:
    parts = []
    for title, header, rows in tables(results["results"]):
        parts += [f"{heading} {title}", table(header, rows)]
    if "targets" in results:
        rows = list(target_rows(results))
        parts += [f"{heading} Targets", table(TARGET_HEADER, rows), judging_line(results)]
    return "\n\n".join([*parts, FOOTNOTE]) + "\n"


def judging_line(run: Mapping[str, Any]) -> str:
    settings = run["target_settings"]
    n = settings["pairs"]
    coverage = median_interval([1.0] * n).coverage
    return (
        f"Each target: fresh processes of the server and its reference, both warmed up "
        f"({settings['warmup']:g} s), then {n} pairs of {settings['seconds']:g} s runs in alternating order "
        "(server first, then reference first, ...), both on the same CPU. Each pair gives one ratio; the "
        f"interval holds the median ratio with {coverage:.1%} confidence, whatever the ratios' distribution "
        "(the sign test's order statistics, bench/stats.py). "
        f'"{MET}": the whole interval is at or above the goal; "{MISSED}": it is wholly below; '
        f'otherwise "{CANNOT_TELL}". The idle target is one run\'s CPU share.'
    )


def terminal(results: Mapping[str, Any]) -> str:
    return render(results, text_table, "##")


def markdown(results: Mapping[str, Any]) -> str:
    machine = results["machine"]
    skipped = [f"- {s['name']}: skipped, {s['skipped']}" for s in results["servers"] if s["skipped"]]
    intro = [
        "# io-models benchmark",
        f"`{results['command']}` on {machine_line(machine)}, started {results['started']}.",
        settings_line(results),
        *skipped,
    ]
    return "\n\n".join(intro) + "\n\n" + render(results, markdown_table, "##")


def machine_line(machine: Mapping[str, Any]) -> str:
    """toolkit.machine's record as a line, with where the bench pinned what, if it did."""
    line = f"{machine['cpu']}, {machine['cores']} cores, {machine['kernel']}, Python {machine['python']}"
    if "pinning" in machine:  # a tool that times nothing says so (bench.cost)
        return f"{line}; {machine['pinning']}"
    if "server_cpu" not in machine:  # a tool that pins nothing: the conformance suite
        return line
    pinned = (
        f"server on CPU {machine['server_cpu']}, load generator on CPU {machine['loadgen_cpu']}"
        if machine["server_cpu"] is not None
        else "server not pinned"
    )
    return f"{line}; {pinned}"


def settings_line(results: Mapping[str, Any]) -> str:
    settings = results["settings"]
    return (
        f"Each figure: the median of {settings['repeats']} runs of {settings['seconds']:g} s, "
        f"after a {settings['warmup']:g} s warm-up, on a fresh server process."
    )


# The committed runs (docs/bench/NAME.json, rendered to NAME.md) and the README sections
# drawn from them. `python3 -m bench.report` rewrites all of it; tests/test_docs.py fails
# when any of it disagrees with the JSON, so no figure or verdict is ever typed by hand.
ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "docs" / "bench"
FULL_RUN, TARGETS_RUN = RUNS / "results.json", RUNS / "targets.json"
EXCERPT = [  # the README's columns: (title, scenario, connections, size, field, format)
    ("100 × 64 B: round trips/s", "throughput", 100, 64, "round_trips_per_second", "{:,.0f}"),
    ("CPU µs per round trip", "throughput", 100, 64, "server_cpu_us_per_round_trip", "{:.1f}"),
    ("1,000 × 1 KiB: round trips/s", "throughput", 1000, 1024, "round_trips_per_second", "{:,.0f}"),
    ("CPU µs per round trip", "throughput", 1000, 1024, "server_cpu_us_per_round_trip", "{:.1f}"),
    ("10,000 held: RSS per connection", "hold", 10_000, 64, "rss_per_connection_kib", "{:.1f} KiB"),
    ("1,000 idle: CPU", "idle", 1000, 64, "server_cpu_percent", "{:.1f}%"),
]


def begin_marker(name: str) -> str:
    return f"<!-- begin {name}: generated by python3 -m bench.report; do not edit -->"


def end_marker(name: str) -> str:
    return f"<!-- end {name} -->"


def replace_section(text: str, name: str, body: str) -> str:
    """The text with what lies between the named section's markers replaced by body."""
    begin, end = begin_marker(name), end_marker(name)
    head, found, rest = text.partition(begin + "\n")
    _, closed, tail = rest.partition(end)
    if not (found and closed):
        raise ValueError(f"no section {name!r}: the page needs {begin!r} ... {end!r}")
    return f"{head}{begin}\n{body}\n{end}{tail}"


def server_label(run: Mapping[str, Any], name: str) -> str:
    kind = next(server["kind"] for server in run["servers"] if server["name"] == name)
    return f"`{name}`" if kind == "model" else name


def loaded(result: Result) -> tuple[str, str, int, int]:
    """Who ran under which load: (server, scenario, connections, size)."""
    return result["server"], result["scenario"], result["connections"], result["size"]


def excerpt(run: Mapping[str, Any]) -> str:
    """The README's table of the full run: a few loads, every server that ran."""
    rows, failures = [], []
    for server in (s["name"] for s in run["servers"] if not s["skipped"]):
        row = [server_label(run, server)]
        for _, scenario, connections, size, field, shape in EXCERPT:
            result = find(run["results"], server, scenario, connections, size)
            if result is None:
                load = (server, scenario, connections, size)
                why = [r["failure"] for r in run["results"] if r["failure"] and load == loaded(r)]
                note = f"{server}, {describe(scenario, connections, size, 1)}: {why[0] if why else 'not run'}"
                failures += [note] if note not in failures else []
                row.append("—")
                continue
            capped = result.get("loadgen_saturated") and field == "round_trips_per_second"
            bound = f" {LOADGEN_BOUND}" if capped else ""
            row.append(shape.format(result[field]) + bound)
        rows.append(row)
    header = ["server", *(title for title, *_ in EXCERPT)]
    table = markdown_table(header, rows).replace("| --- " * len(header), "|---" + "|---:" * len(EXCERPT))
    intro = (
        f"`{run['command']}` on {machine_line(run['machine'])}, started {run['started']}. "
        f"{settings_line(run)} Some of its figures ([all of them](docs/bench/results.md), "
        f"[raw](docs/bench/results.json)); {LOADGEN_BOUND} marks a figure the load generator may "
        "have capped, and — one the run does not have" + (", for the reason below:" if failures else ":")
    )
    notes = [f"- {failure}" for failure in failures]
    return "\n\n".join([intro, table, *(["\n".join(notes)] if notes else [])])


def verdicts(run: Mapping[str, Any]) -> str:
    """The README's targets: one run's table, and a sentence that counts it."""
    rows = list(target_rows(run))
    intro = (
        f"The targets are judged on one run, `{run['command']}` on {machine_line(run['machine'])} "
        f"(started {run['started']}; "
        f"[its tables](docs/bench/targets.md), [raw](docs/bench/targets.json)). {judging_line(run)}"
    )
    counts = [f"{sum(row[3] == verdict for row in rows)} {verdict}" for verdict in (MET, MISSED, CANNOT_TELL)]
    unmeasured = sum(len(row) > 1 and not row[3] for row in rows)
    count = f"In that run, of {len(rows)} targets: {', '.join(counts)}" + (
        f", {unmeasured} not measured." if unmeasured else "."
    )
    return "\n\n".join([intro, markdown_table(TARGET_HEADER, rows), count])


def load(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text(encoding="utf-8")))


def committed_pages(root: Path = ROOT) -> dict[Path, str]:
    """Each page the committed runs make or are quoted in, as they make it: path -> text."""
    from bench import quotes  # noqa: PLC0415 -- its list of pages builds on this module

    return quotes.pages(root)


def main() -> int:
    """Rewrite docs/bench/*.md, docs/syscalls.md and every section that quotes them (bench/quotes.py)."""
    for path, text in committed_pages().items():
        if path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            print(f"rewrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
