"""The charts of python3 -m bench.growth, drawn from its JSON alone (growth.json, prefork.json).

growth(): CPU per message against connections held, log-log, one panel per kind of wait
(the groups of the run's servers), the peers in grey in each for scale. prefork(): round
trips per second against workers, and beside it the CPU each side used.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display needed

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from bench.charts import DPI, _add_footer, _number

Run = Mapping[str, Any]
PEER_GROUP = "peers, for scale"
COLOURS = [
    "tab:blue",
    "tab:orange",
    "tab:green",
    "tab:red",
    "tab:purple",
    "tab:brown",
    "tab:pink",
    "tab:olive",
]


def growth(run: Run, path: Path) -> None:
    groups = [s["group"] for s in run["servers"] if s["group"] != PEER_GROUP]
    panels = list(dict.fromkeys(groups))
    peers = [s["name"] for s in run["servers"] if s["group"] == PEER_GROUP and not s["skipped"]]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 5.6), sharey=True, squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        members = [s["name"] for s in run["servers"] if s["group"] == panel and not s["skipped"]]
        for index, name in enumerate(members):
            xs, ys, capped = _curve(run, name)
            colour = COLOURS[index % len(COLOURS)]
            ax.plot(xs, ys, marker="o", color=colour, label=name, linewidth=1.8)
            if capped and xs:
                where = {"textcoords": "offset points", "xytext": (4, -10)}
                ax.annotate(f"stops: cap {capped:,}", (xs[-1], ys[-1]), fontsize=8, color=colour, **where)
        for index, name in enumerate(peers):
            xs, ys, _ = _curve(run, name)
            ax.plot(
                xs, ys, marker="x", color=("0.35", "0.6")[index % 2], linestyle="--", label=name, linewidth=1
            )
        ax.set_title(panel, fontsize=11)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: _number(value)))
        ax.set_xlabel(f"connections held (all active up to {run['active']}, then {run['active']} active)")
        ax.grid(True, which="major", alpha=0.4)
        ax.grid(True, which="minor", axis="y", alpha=0.15)
        ax.legend(fontsize=8, loc="upper right", ncols=2)
    first = axes[0][0]
    first.yaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
    first.yaxis.set_major_formatter(FuncFormatter(lambda value, _: _number(value)))
    first.yaxis.set_minor_formatter(NullFormatter())
    first.set_ylabel("server CPU µs per echoed message (log)")
    top = max((r["server_cpu_us_per_round_trip"] for r in run["results"] if not r["failure"]), default=1)
    first.set_ylim(top=top * 4)  # room above the lines for the legends
    fig.suptitle("CPU per message as the connections held grow: which O() each model pays", fontsize=12)
    _save(fig, run, path)


def _curve(run: Run, name: str) -> tuple[list[int], list[float], int | None]:
    """(connections, CPU µs per message) of a server's successful points, and the cap it stops at."""
    results = sorted((r for r in run["results"] if r["server"] == name), key=lambda r: r["connections"])
    done = [r for r in results if not r["failure"]]
    cap = next((r["cap"] for r in results if "cap" in r), None)
    return [r["connections"] for r in done], [r["server_cpu_us_per_round_trip"] for r in done], cap


def prefork(run: Run, path: Path) -> None:
    placements = list(dict.fromkeys(r["loadgen_cpu"] for r in run["results"]))
    fig, axes = plt.subplots(1, 1 + len(placements), figsize=(6 + 4.2 * len(placements), 5.4), squeeze=False)
    rates, cpus = axes[0][0], axes[0][1:]
    workers = sorted({r["workers"] for r in run["results"] if r["workers"]})
    for index, (connections, size) in enumerate(run["loads"]):
        label = f"{connections:,} × {size if size < 1024 else size // 1024}{' B' if size < 1024 else ' KiB'}"
        colour = COLOURS[index]
        for cpu_panel, loadgen_cpu in zip(cpus, placements, strict=True):
            at = [
                r
                for r in run["results"]
                if (r["connections"], r["size"], r["loadgen_cpu"]) == (connections, size, loadgen_cpu)
                and not r["failure"]
            ]
            ok = sorted((r for r in at if r["workers"]), key=lambda r: r["workers"])
            where = placement(loadgen_cpu)
            line = "-" if loadgen_cpu is None else "--"
            look = {"color": colour, "linestyle": line, "marker": "o"}
            rates.plot([r["workers"] for r in ok], [r["round_trips_per_second"] for r in ok],
                       label=f"{label}, {where}", **look)  # fmt: skip
            for reference in (r for r in at if not r["workers"]):
                star = {"color": colour, "linestyle": "none", "marker": "*", "markersize": 12}
                rates.plot([1], [reference["round_trips_per_second"]], label="_nolegend_", **star)
            offset = (index - 0.5) * 0.4
            xs = [workers.index(r["workers"]) + offset for r in ok]
            server = [r["server_cpu_percent"] for r in ok]
            cpu_panel.bar(xs, server, 0.38, color=colour, label=f"server, {label}")
            cpu_panel.bar(xs, [r["client_cpu_percent"] for r in ok], 0.38, bottom=server, color=colour,
                          alpha=0.35, hatch="//", label=f"load generator, {label}")  # fmt: skip
    rates.set_xscale("log", base=2)
    rates.set_xticks(workers, [str(w) for w in workers])
    rates.set_xlabel("prefork workers (★ at 1: epoll_mux, one process, same colour and load)")
    rates.set_ylabel("round trips per second")
    rates.yaxis.set_major_formatter(FuncFormatter(lambda value, _: _number(value)))
    rates.set_ylim(bottom=0, top=rates.get_ylim()[1] * 1.45)  # room for the legend
    rates.grid(True, alpha=0.4)
    rates.legend(fontsize=8, loc="upper left")
    rates.set_title("throughput against workers (server not pinned)", fontsize=11)
    cores = run["machine"]["cores"]
    for cpu_panel, loadgen_cpu in zip(cpus, placements, strict=True):
        cpu_panel.axhline(100 * cores, color="black", linewidth=1, linestyle="--")
        offsets: dict[str, Any] = {
            "xytext": (-2, 3),
            "textcoords": "offset points",
            "fontsize": 8,
            "ha": "right",
        }
        cpu_panel.annotate(f"all {cores} cores", (len(workers) - 0.5, 100 * cores), **offsets)
        cpu_panel.set_xticks(range(len(workers)), [f"{w} worker{'s' if w > 1 else ''}" for w in workers])
        cpu_panel.set_ylim(0, 100 * cores * 1.15)
        cpu_panel.set_title(f"CPU used, {placement(loadgen_cpu)}", fontsize=11)
        cpu_panel.legend(fontsize=7, loc="upper left")
    cpus[0].set_ylabel("CPU % of one core (server solid, load generator hatched)")
    _save(fig, run, path)


def placement(loadgen_cpu: int | None) -> str:
    return "load generator not pinned" if loadgen_cpu is None else f"load generator on CPU {loadgen_cpu}"


def _save(fig: Figure, run: Run, path: Path) -> None:
    _add_footer(fig, run)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
