"""The benchmark: its load generator measures real round trips and notices a wrong echo,
a small run writes every output, and the targets are judged honestly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench.__main__ import main as bench_main
from bench.loadgen import Load, run
from bench.report import target_rows
from tests.servers import spec_for
from toolkit.process import ServerProcess

pytestmark = pytest.mark.timeout(120)


def test_load_generator_measures_round_trips() -> None:
    with ServerProcess(spec_for("epoll_mux")) as server:
        measured = run(*server.address, Load(connections=4, size=1024, inflight=2, seconds=0.5))
    assert measured.failure is None
    assert measured.round_trips > 100
    assert measured.bytes >= measured.round_trips * 1024
    assert sum(count for _, count in measured.histogram_ns) == measured.round_trips
    assert 0 < measured.percentile(0.5) <= measured.percentile(0.99) < 1e9


def test_load_generator_notices_a_wrong_echo() -> None:
    with ServerProcess(spec_for("broken/upper")) as server:
        measured = run(*server.address, Load(connections=2, size=64, inflight=1, seconds=0.5))
    assert measured.failure == "an echoed byte differs from the byte sent"


def test_a_small_run_writes_every_output(tmp_path: Path) -> None:
    """python3 -m bench end to end, shrunk: two servers, a small load, idle connections."""
    arguments = ["--servers", "epoll_mux,asyncio Protocol", "--scenarios", "throughput,idle"]
    arguments += ["--connections", "4", "--sizes", "64", "--idle", "20", "--seconds", "0.2"]
    arguments += ["--repeats", "2", "--warmup", "0.1", "--output", str(tmp_path)]
    assert bench_main(arguments) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert {(r["server"], r["scenario"]) for r in results["results"]} == {
        (server, scenario)
        for server in ("epoll_mux", "asyncio Protocol")
        for scenario in ("throughput", "idle")
    }
    for result in results["results"]:
        assert result["failure"] is None, result
        if result["scenario"] == "throughput":
            assert len(result["runs"]) == 2  # repeated; idle is one run of the same length
            assert result["round_trips_per_second"] > 100
            assert 0 < result["server_cpu_us_per_round_trip"] < 10_000
        assert result["rss_per_connection_kib"] < 1024
    assert results["machine"]["python"] and results["settings"]["repeats"] == 2
    assert "| epoll_mux |" in (tmp_path / "results.md").read_text()
    charts = sorted(path.name for path in (tmp_path / "charts").glob("*.png"))
    assert "throughput.png" in charts and "cpu_per_round_trip.png" in charts


def figures(server: str, rate: float, spread: float, cpu_us: float) -> dict[str, Any]:
    return {
        "server": server, "scenario": "throughput", "connections": 100, "size": 64, "inflight": 1,
        "failure": None, "round_trips_per_second": rate, "spread": spread,
        "server_cpu_us_per_round_trip": cpu_us, "loadgen_saturated": False,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("rate", "spread", "verdict"),
    [
        (100.0, 0.0, "met"),
        (95.0, 0.2, "missed (within spread)"),
        (70.0, 0.2, "missed"),
        (95.0, 0.0, "missed"),
    ],
)
def test_targets_are_judged_against_the_runs_spread(rate: float, spread: float, verdict: str) -> None:
    results = [figures("epoll_mux", rate, spread, 10.0), figures("uvloop Protocol", 100.0, spread, 10.0)]
    row = next(
        row for row in target_rows(results) if row[0].startswith("epoll_mux ≥ 1× uvloop Protocol, 100 ")
    )
    assert row[1] == f"{rate / 100:.2f}×"
    assert row[3] == verdict
