"""Draw the benchmark's results (the JSON `python3 -m bench` writes) as PNG charts.

render() draws throughput against connections, pingpong latency, server CPU per round trip
and memory per connection. Each server keeps one look in every chart: our models in
colour with solid lines, the peers (there for scale) in greys with dashed lines. A hollow
marker is a figure the load generator, not the server, capped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import cycle
from pathlib import Path
from typing import Any, Literal

import matplotlib

matplotlib.use("Agg")  # files only: no display needed

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

Result = Mapping[str, Any]
Style = dict[str, Any]  # keyword arguments for a line: color, marker, linestyle

# Nine colours (tab10's, but its grey: greys are the peers') and seven markers, taken in
# step: no two of the first 63 models look alike.
MODEL_COLOURS = tuple(
    f"tab:{hue}" for hue in ("blue", "orange", "green", "red", "purple", "brown", "pink", "olive", "cyan")
)
MODEL_MARKERS = "os^Dvp<"
# Peers: each grey with each dash pattern in turn, so no two of the seven look alike.
PEER_LOOKS = [(grey, dashes) for dashes in ("--", "-.", ":") for grey in ("0.2", "0.45", "0.65")]
PEER_MARKERS = "X*<>hdP"
PERCENTILES = {"p50": "tab:blue", "p99": "tab:orange", "p99.9": "tab:red"}  # with their bars' colours
HOLLOW: Style = {"linestyle": "none", "markerfacecolor": "white"}  # a marker alone, unfilled
DPI = 110


def render(results: Mapping[str, Any], directory: Path) -> list[Path]:
    """Draw the charts into directory (created if missing); return the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    styles = _styles(results)
    charts = {
        "throughput.png": _throughput(results, styles),
        "latency.png": _latency(results, styles),
        "cpu_per_round_trip.png": _cpu_per_round_trip(results, styles),
        "memory_per_connection.png": _memory_per_connection(results, styles),
    }
    written = []
    for name, fig in charts.items():
        if fig is None:  # no data for this chart
            continue
        _add_footer(fig, results)
        fig.savefig(directory / name, dpi=DPI)
        plt.close(fig)
        written.append(directory / name)
    return written


def _styles(results: Result) -> dict[str, Style]:
    models = [server["name"] for server in results["servers"] if server["kind"] == "model"]
    peers = [server["name"] for server in results["servers"] if server["kind"] != "model"]
    styles = {
        name: {"color": colour, "marker": marker, "linestyle": "-"}
        for name, colour, marker in zip(models, cycle(MODEL_COLOURS), cycle(MODEL_MARKERS))
    }
    for name, (grey, dashes), marker in zip(peers, cycle(PEER_LOOKS), cycle(PEER_MARKERS)):
        styles[name] = {"color": grey, "marker": marker, "linestyle": dashes}
    return styles


def _results(results: Result, scenario: str, **load: int) -> list[Result]:
    """The results of one scenario, at one load if given (as connections=100, size=64)."""
    return [
        result
        for result in results["results"]
        if result["scenario"] == scenario and all(result[key] == value for key, value in load.items())
    ]


def _throughput(results: Result, styles: Mapping[str, Style]) -> Figure | None:
    measured = [r for r in _results(results, "throughput") if r.get("round_trips_per_second") is not None]
    sizes = sorted({r["size"] for r in measured})
    if not sizes:
        return None
    fig, axes = plt.subplots(1, len(sizes), figsize=(12.5, 6), layout="constrained", squeeze=False)
    rates = [r["round_trips_per_second"] for r in measured]
    for ax, size in zip(axes[0], sizes, strict=True):
        for server, style in styles.items():
            rows = sorted(
                (r for r in measured if r["server"] == server and r["size"] == size),
                key=lambda r: r["connections"],
            )
            ax.plot(*_points(rows), **style)
            saturated = [r for r in rows if r["loadgen_saturated"]]
            ax.plot(*_points(saturated), **(style | HOLLOW))
        ax.set_title(f"{_size(size)} messages")
        ax.set_xlabel("connections (log scale)")
        ax.set_xscale("log")
        ax.set_xticks([10, 100, 1000], ["10", "100", "1000"])
        ax.set_xlim(7, 1500)
        scale = _set_scale(ax, "y", rates)
        ax.grid(alpha=0.3)
    fig.suptitle("Throughput: round trips per second, 1 message in flight per connection (higher is better)")
    fig.supylabel(f"throughput (round trips per second{scale})")
    drawn = {r["server"] for r in measured}
    handles = [Line2D([], [], label=server, **style) for server, style in styles.items() if server in drawn]
    if any(r["loadgen_saturated"] for r in measured):
        handles.append(
            Line2D([], [], color="black", marker="o", label="hollow: load generator saturated", **HOLLOW)
        )
    # Beside the last plot rather than on the figure: the layout then leaves room for it.
    axes[0][-1].legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1))
    return fig


def _points(rows: Sequence[Result]) -> tuple[list[int], list[float]]:
    return [r["connections"] for r in rows], [r["round_trips_per_second"] for r in rows]


def _latency(results: Result, styles: Mapping[str, Style]) -> Figure | None:
    rows = _results(results, "pingpong")
    bars = {r["server"]: [r["latency_us"][p] for p in PERCENTILES] for r in rows if r.get("latency_us")}
    title = "Latency, pingpong: 1 connection, 64 B, one round trip at a time (lower is better)"
    legend = list(PERCENTILES.items())
    return _bar_chart(title, "round-trip latency", "µs", bars, _failures(rows), styles=styles, legend=legend)


def _cpu_per_round_trip(results: Result, styles: Mapping[str, Style]) -> Figure | None:
    loads = sorted({(r["connections"], r["size"]) for r in _results(results, "throughput")})
    if not loads:
        return None
    connections, size = (100, 64) if (100, 64) in loads else loads[0]
    rows = _results(results, "throughput", connections=connections, size=size)
    key = "server_cpu_us_per_round_trip"
    bars = {r["server"]: [r[key]] for r in rows if r.get(key) is not None}
    title = f"Server CPU per round trip, {connections} connections x {_size(size)} (lower is better)"
    return _bar_chart(title, "server CPU time per round trip", "µs", bars, _failures(rows), styles=styles)


def _memory_per_connection(results: Result, styles: Mapping[str, Style]) -> Figure | None:
    # The hold scenario is the one meant for this; idle (1000 connections) stands in without it.
    for scenario, what in (("hold", "held open"), ("idle", "idle")):
        rows = _results(results, scenario)
        key = "rss_per_connection_kib"
        bars = {r["server"]: [r[key]] for r in rows if r.get(key) is not None}
        if bars:
            title = f"Memory per connection, {rows[0]['connections']} connections {what} (lower is better)"
            return _bar_chart(title, "RSS per connection", "KiB", bars, _failures(rows), styles=styles)
    return None


def _bar_chart(
    title: str,
    quantity: str,
    unit: str,
    bars: Mapping[str, Sequence[float]],
    failures: Mapping[str, str],
    *,
    styles: Mapping[str, Style],
    legend: Sequence[tuple[str, str]] = (),
) -> Figure | None:
    """Horizontal bars, one group per server, lowest first; failed servers as a note instead.

    bars maps each server to its figures: one, drawn in the server's colour, or one per
    (name, colour) entry of legend.
    """
    if not bars:
        return None
    servers = sorted(bars, key=lambda server: bars[server][0])
    series: Sequence[tuple[str, str | list[str]]] = legend or [
        ("", [styles[server]["color"] for server in servers])
    ]
    rows = len(servers) + len(failures)
    fig, ax = plt.subplots(figsize=(11, 1.4 + rows * (0.2 + 0.15 * len(series))), layout="constrained")
    height = 0.8 / len(series)
    for i, (label, colour) in enumerate(series):
        values = [bars[server][i] for server in servers]
        # A group's bars side by side, centred on its server's row.
        positions = [row + (i - (len(series) - 1) / 2) * height for row in range(len(servers))]
        drawn = ax.barh(positions, values, height, color=colour, label=label)
        ax.bar_label(drawn, [_number(value) for value in values], padding=3, fontsize=8)
    for row, server in enumerate(failures, start=len(servers)):
        note = f"failed: {failures[server]}"
        ax.text(0.01, row, note, transform=ax.get_yaxis_transform(), va="center", color="firebrick")
    ax.set_yticks(range(rows), servers + list(failures))
    ax.set_ylim(rows - 0.5, -0.5)  # lowest (best) at the top
    scale = _set_scale(ax, "x", [value for figures in bars.values() for value in figures])
    ax.margins(x=0.1)  # room for the value labels
    ax.set_xlabel(f"{quantity} ({unit}{scale})")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    if legend:
        ax.legend(loc="upper right")
    return fig


def _failures(rows: Sequence[Result]) -> dict[str, str]:
    return {r["server"]: r["failure"] for r in rows if r["failure"]}


def _set_scale(ax: Axes, axis: Literal["x", "y"], values: Sequence[float]) -> str:
    """Log scale if values span more than 30x (the small ones would vanish on a linear scale).

    Returns what the axis label should add: ", log scale" or nothing.
    """
    log = max(values) > 30 * min(values)
    set_scale, ticks = (ax.set_xscale, ax.xaxis) if axis == "x" else (ax.set_yscale, ax.yaxis)
    set_scale("log" if log else "linear")
    if log:
        ticks.set_major_locator(LogLocator(subs=(1, 2, 5)))
        ticks.set_minor_formatter(NullFormatter())  # else a short span labels its minor ticks too
    ticks.set_major_formatter(FuncFormatter(lambda value, _: _number(value)))
    return ", log scale" if log else ""


def _size(size: int) -> str:
    return f"{size // 1024} KiB" if size >= 1024 else f"{size} B"


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def _add_footer(fig: Figure, results: Result) -> None:
    machine = results["machine"]
    line = f"{machine['cpu']}, {machine['cores']} cores, {machine['kernel']}, Python {machine['python']}"
    # As the figure's x label, the layout keeps it clear of everything else.
    fig.supxlabel(
        f"{line}  ·  {results['command']}  ·  started {results['started']}",
        x=0.005,
        ha="left",
        fontsize=8,
        color="dimgrey",
    )
