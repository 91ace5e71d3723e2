"""The benchmark's tables (terminal and Markdown) and its targets, from the results JSON."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bench.measure import describe, size_label

Result = Mapping[str, Any]
REFERENCE = "epoll_mux"  # every throughput is also shown as a ratio to this one
LOADGEN_BOUND = "†"
FOOTNOTE = (
    f"{LOADGEN_BOUND} the load generator used ≥ 90% of its core: this figure may be its limit, "
    "not the server's; compare CPU per round trip instead. "
    "Spread: (fastest run - slowest run) ÷ median; a ratio between two servers is only as sure "
    "as their spreads allow."
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
    Target("gevent_io", "gevent StreamServer", 100, 64, 1.0),
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


def target_rows(results: Sequence[Result]) -> Iterator[list[str]]:
    """Each target with the ratio measured, or why it could not be."""
    for target in TARGETS:
        load = f"{target.connections:,} × {size_label(target.size)}"
        goal = f"{target.server} ≥ {target.at_least:g}× {target.reference}, {load}"
        ours = find(results, target.server, "throughput", target.connections, target.size)
        theirs = find(results, target.reference, "throughput", target.connections, target.size)
        if ours is None or theirs is None:
            yield [goal, "not measured in this run", "", ""]
            continue
        ratio = ours["round_trips_per_second"] / theirs["round_trips_per_second"]
        cheaper = theirs["server_cpu_us_per_round_trip"] / ours["server_cpu_us_per_round_trip"]
        bound = LOADGEN_BOUND if ours["loadgen_saturated"] or theirs["loadgen_saturated"] else ""
        noise = (ours["spread"] + theirs["spread"]) / 2
        if ratio >= target.at_least:
            verdict = "met"
        else:  # a miss smaller than the runs' own spread may be noise: say which
            verdict = "missed (within spread)" if ratio >= target.at_least * (1 - noise) else "missed"
        yield [goal, f"{ratio:.2f}× {bound}".strip(), f"{cheaper:.2f}×", verdict]
    server, connections, most = IDLE_TARGET
    goal = f"{server} idle CPU < {most:g}% with {connections:,} idle connections"
    idle = find(results, server, "idle", connections)
    if idle is None:
        yield [goal, "not measured in this run", "", ""]
    else:
        cpu = idle["server_cpu_percent"]
        yield [goal, f"{cpu:.1f}%", "", "met" if cpu < most else "missed"]


TARGET_HEADER = [
    "target",
    "measured (round trips/s ratio)",
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
    parts += [f"{heading} Targets", table(TARGET_HEADER, list(target_rows(results["results"]))), FOOTNOTE]
    return "\n\n".join(parts) + "\n"


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
    pinned = (
        f"server on CPU {machine['server_cpu']}, load generator on CPU {machine['loadgen_cpu']}"
        if machine["server_cpu"] is not None
        else "not pinned (one CPU)"
    )
    cores = f"{machine['cores']} cores"
    return f"{machine['cpu']}, {cores}, {machine['kernel']}, Python {machine['python']}; {pinned}"


def settings_line(results: Mapping[str, Any]) -> str:
    settings = results["settings"]
    return (
        f"Each figure: the median of {settings['repeats']} runs of {settings['seconds']:g} s, "
        f"after a {settings['warmup']:g} s warm-up, on a fresh server process."
    )
