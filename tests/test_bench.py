"""The benchmark: its load generator measures real round trips and notices a wrong echo,
a small run writes every output, paired runs alternate, and a target gets a verdict only
when its interval allows one."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import pytest

from bench import noise
from bench.__main__ import main as bench_main
from bench.loadgen import Load, run
from bench.report import rate_ratios, target_rows
from bench.stats import median_interval
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


def test_paired_runs_alternate_and_keep_every_run(tmp_path: Path) -> None:
    """One target in paired runs: server first, then reference first, each run kept."""
    arguments = ["--servers", "epoll_mux,poll_mux", "--scenarios", "targets", "--pairs", "2"]
    arguments += ["--pair-seconds", "0.2", "--warmup", "0.1", "--output", str(tmp_path)]
    assert bench_main(arguments) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    [paired] = results["targets"]
    assert (paired["server"], paired["reference"], paired["failure"]) == ("poll_mux", "epoll_mux", None)
    assert [(run["pair"], run["who"]) for run in paired["runs"]] == [
        (0, "server"), (0, "reference"), (1, "reference"), (1, "server"),
    ]  # fmt: skip
    assert len(rate_ratios(paired)) == 2
    assert "| poll_mux ≥ 0.9× epoll_mux, 100 × 64 B | " in (tmp_path / "results.md").read_text()


@pytest.mark.parametrize(
    ("n", "low", "high", "coverage"),
    [(1, 0, 0, 0.0), (3, 0, 2, 0.75), (5, 0, 4, 0.9375), (9, 1, 7, 0.9609375), (12, 2, 9, 0.96142578125)],
)
def test_the_interval_is_the_sign_tests(n: int, low: int, high: int, coverage: float) -> None:
    """The narrowest [x(k), x(n+1-k)] reaching 95%, or [min, max] when n is too small."""
    values = [float(v) for v in reversed(range(n))]  # unsorted on purpose
    interval = median_interval(values)
    assert (interval.low, interval.high) == (low, high)
    assert interval.coverage == pytest.approx(coverage)
    assert interval.median == (n - 1) / 2


def test_the_coverage_is_what_it_claims() -> None:
    """Seeded draws from a skewed distribution: the 9-pair interval holds the true median
    about 96.1% of the time."""
    generator = random.Random(16)
    true_median = math.log(2)  # of the exponential distribution with rate 1
    draws = [median_interval([generator.expovariate(1) for _ in range(9)]) for _ in range(4000)]
    held = sum(i.low <= true_median <= i.high for i in draws) / len(draws)
    assert abs(held - 0.9609375) < 0.015


def paired(ratios: list[float], client_cpu: float = 0.5) -> dict[str, Any]:
    """A paired result whose pairs have these round-trip ratios (server ÷ reference)."""
    runs = []
    for pair, ratio in enumerate(ratios):
        for who, rate in (("server", 1000 * ratio), ("reference", 1000.0)):
            runs.append({
                "who": who, "pair": pair, "seconds": 1.0, "round_trips": rate, "bytes": 0,
                "client_cpu_seconds": client_cpu, "server_cpu_seconds": rate * 1e-5,
            })  # fmt: skip
    return {
        "server": "epoll_mux", "reference": "uvloop Protocol", "connections": 100, "size": 64,
        "failure": None, "runs": runs,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("ratios", "verdict"),
    [
        ([1.01, 1.1, 1.05, 1.2, 1.02], "met"),
        ([0.99, 1.1, 1.05, 1.2, 1.02], "cannot tell at this noise"),  # one pair below the goal
        ([0.7, 0.99, 0.8, 0.9, 0.95], "missed"),
        ([0.7, 1.0, 0.8, 0.9, 0.95], "cannot tell at this noise"),
        (
            [0.9, 0.91, 0.92, 0.93, 0.94, 0.95, 0.96, 0.97, 1.5],
            "missed",
        ),  # x(8) < 1: one outlier cannot save it
    ],
)
def test_a_verdict_needs_the_whole_interval(ratios: list[float], verdict: str) -> None:
    run = {"targets": [paired(ratios)], "results": []}
    row = next(row for row in target_rows(run) if row[0] == "epoll_mux ≥ 1× uvloop Protocol, 100 × 64 B")
    assert row[3] == verdict
    interval = median_interval(ratios)
    assert row[1] == f"{interval.median:.2f}× ({interval.low:.2f}\N{EN DASH}{interval.high:.2f}×)"


def test_the_loadgen_bound_is_marked() -> None:
    run = {"targets": [paired([1.1, 1.2, 1.3], client_cpu=0.95)], "results": []}
    row = next(row for row in target_rows(run) if row[0].startswith("epoll_mux ≥ 1× uvloop Protocol, 100 "))
    assert row[1].endswith(" †")


def test_pairs_are_matched_by_number_not_by_order() -> None:
    """A ratio is the server's run over the reference's run of the same pair."""
    result = paired([2.0, 0.5])
    result["runs"] = result["runs"][::-1]  # reference first, then the pairs backwards
    result["runs"].append({**result["runs"][0], "pair": 2})  # a pair left incomplete
    assert rate_ratios(result) == [2.0, 0.5]


def test_the_noise_page_renders_from_its_runs() -> None:
    saved = json.loads(noise.SAVED.read_text(encoding="utf-8"))
    assert noise.PAGE.read_text(encoding="utf-8") == noise.page(saved), "python3 -m bench.noise rewrites it"
    first = saved["runs"][0]
    first["targets"][0]["runs"][0]["round_trips"] *= 1000  # one pair's ratio now far off
    assert noise.page(saved) != noise.PAGE.read_text(encoding="utf-8")
