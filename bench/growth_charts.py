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
                ax.annotate(f"cap {capped:,}", (xs[-1], ys[-1]), fontsize=8, color=colour, **where)
        for index, name in enumerate(peers):
            xs, ys, _ = _curve(run, name)
            ax.plot(
                xs, ys, marker="x", color=("0.35", "0.6")[index % 2], linestyle="--", label=name, linewidth=1
            )
        ax.set_title(panel, fontsize=11)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: _number(value)))
        ax.set_xlabel(f"connections held ({run['active']} of them active)")
        ax.grid(True, which="major", alpha=0.4)
        ax.grid(True, which="minor", axis="y", alpha=0.15)
        ax.legend(fontsize=8, loc="upper left")
    first = axes[0][0]
    first.yaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
    first.yaxis.set_major_formatter(FuncFormatter(lambda value, _: _number(value)))
    first.yaxis.set_minor_formatter(NullFormatter())
    first.set_ylabel("server CPU µs per echoed message (log)")
    fig.suptitle("CPU per message as the connections held grow: which O() each model pays", fontsize=12)
    _save(fig, run, path)


def _curve(run: Run, name: str) -> tuple[list[int], list[float], int | None]:
    """(connections, CPU µs per message) of a server's successful points, and the cap it stopped at."""
    results = sorted((r for r in run["results"] if r["server"] == name), key=lambda r: r["connections"])
    done = [r for r in results if not r["failure"]]
    stopped = any("cap of" in (r["failure"] or "") for r in results)
    xs = [r["connections"] for r in done]
    return xs, [r["server_cpu_us_per_round_trip"] for r in done], (xs[-1] if stopped and xs else None)


def prefork(run: Run, path: Path) -> None:
    fig, (rates, cpu) = plt.subplots(1, 2, figsize=(12, 5.2))
    workers = sorted({r["workers"] for r in run["results"] if r["workers"]})
    for index, (connections, size) in enumerate(run["loads"]):
        label = f"{connections:,} × {size if size < 1024 else size // 1024}{' B' if size < 1024 else ' KiB'}"
        at_load = [r for r in run["results"] if (r["connections"], r["size"]) == (connections, size)]
        ok = sorted((r for r in at_load if r["workers"] and not r["failure"]), key=lambda r: r["workers"])
        colour = COLOURS[index]
        rates.plot([r["workers"] for r in ok], [r["round_trips_per_second"] for r in ok], marker="o",
                   color=colour, label=f"prefork, {label}")  # fmt: skip
        for reference in (r for r in at_load if not r["workers"] and not r["failure"]):
            rates.axhline(reference["round_trips_per_second"], color=colour, linestyle=":", linewidth=1,
                          label=f"{reference['server']} (one process), {label}")  # fmt: skip
        width, offset = 0.38, (index - 0.5) * 0.4
        xs = [workers.index(r["workers"]) + offset for r in ok]
        server = [r["server_cpu_percent"] for r in ok]
        cpu.bar(xs, server, width, color=colour, label=f"server, {label}")
        cpu.bar(xs, [r["client_cpu_percent"] for r in ok], width, bottom=server, color=colour, alpha=0.4,
                hatch="//", label=f"load generator, {label}")  # fmt: skip
    rates.set_xscale("log", base=2)
    rates.set_xticks(workers, [str(w) for w in workers])
    rates.set_xlabel("prefork workers")
    rates.set_ylabel("round trips per second")
    rates.yaxis.set_major_formatter(FuncFormatter(lambda value, _: _number(value)))
    rates.set_ylim(bottom=0)
    rates.grid(True, alpha=0.4)
    rates.legend(fontsize=8, loc="lower right")
    rates.set_title("throughput against workers (nothing pinned)", fontsize=11)
    cores = run["machine"]["cores"]
    cpu.axhline(100 * cores, color="black", linewidth=1, linestyle="--")
    cpu.annotate(
        f"all {cores} cores", (-0.5, 100 * cores), xytext=(2, 3), textcoords="offset points", fontsize=8
    )
    cpu.set_xticks(range(len(workers)), [f"{w} worker{'s' if w > 1 else ''}" for w in workers])
    cpu.set_ylabel("CPU % of one core (server solid, load generator hatched)")
    cpu.set_ylim(0, 100 * cores * 1.15)
    cpu.legend(fontsize=8, loc="lower right")
    cpu.set_title("who used the cores", fontsize=11)
    _save(fig, run, path)


def _save(fig: Figure, run: Run, path: Path) -> None:
    _add_footer(fig, run)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
