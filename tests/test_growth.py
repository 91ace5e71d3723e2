"""python3 -m bench.growth's machinery: the load generator holds idle connections beside
the active ones and measures the same connections run after run, and the tables and
docs/prefork.md's section are rendered from the JSON alone."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from bench import growth, report
from bench.loadgen import Load, connected
from tests.servers import spec_for
from toolkit.measure import SETTLE, server_fds
from toolkit.process import ServerProcess, wait_until

pytestmark = pytest.mark.timeout(60)


def test_idle_connections_are_opened_and_held_beside_the_active_ones() -> None:
    with ServerProcess(spec_for("epoll_mux")) as server:
        at_rest = server_fds(server.pid)
        with connected(
            *server.address, Load(connections=3, size=64, inflight=1, seconds=0.2, idle=40)
        ) as session:
            # Every connection, idle or not, is held, once the server has accepted them all: a
            # connect() completes at the handshake, before the server's accept().
            assert wait_until(lambda: server_fds(server.pid) == at_rest + 43, SETTLE)
            runs = [session.measure() for _ in range(2)]  # the same connections, twice
            assert server_fds(server.pid) == at_rest + 43  # still held after the runs
        assert wait_until(lambda: server_fds(server.pid) == at_rest, SETTLE)
    for measured in runs:
        assert measured.failure is None and measured.round_trips > 50
        # Only the active ones sent, and each run ends with every echo back: no byte is
        # counted in a run that did not pay for it.
        assert measured.bytes == 64 * measured.round_trips


MACHINE = {"cpu": "a CPU", "cores": 2, "kernel": "Linux 6", "python": "3.11"}
SCANS, READY = "scans every connection watched", "the kernel reports the ready ones"
COSTS = {  # server -> CPU µs per message at 100, 1,000 and 10,000 connections; None: capped
    "poll_mux": (10.0, 19.0, 123.4),
    "select_mux": (9.0, 18.0, None),
    "epoll_mux": (8.0, 8.2, 8.8),
}


def growth_result(server: str, connections: int, cost: float | None) -> dict[str, Any]:
    result: dict[str, Any] = {"server": server, "connections": connections, "size": 64}
    if cost is None:
        return result | {"failure": "declares a cap of 1,018 connections"}
    return result | {"failure": None, "server_cpu_us_per_round_trip": cost}


GROWTH_RUN: dict[str, Any] = {
    "command": "python3 -m bench.growth",
    "started": "2026-01-01T00:00:00Z",
    "machine": MACHINE | {"server_cpu": 0, "loadgen_cpu": 1},
    "settings": {"seconds": 1.0, "warmup": 1.0, "repeats": 3},
    "active": 100,
    "size": 64,
    "totals": [100, 1000, 10000],
    "servers": [
        {"name": name, "kind": "model", "group": READY if name == "epoll_mux" else SCANS, "skipped": None}
        for name in COSTS
    ],
    "results": [
        growth_result(server, total, cost)
        for server, costs in COSTS.items()
        for total, cost in zip((100, 1000, 10000), costs, strict=True)
    ],
}


def test_the_growth_table_is_rendered_from_the_run() -> None:
    page = growth.growth_markdown(GROWTH_RUN)
    assert "| `poll_mux` | scans every connection watched | 10.0 | 19.0 | 123.4 |" in page
    assert "| `select_mux` | scans every connection watched | 9.0 | 18.0 | capped |" in page
    assert "- select_mux at 10,000: declares a cap of 1,018 connections" in page
    assert "`python3 -m bench.growth` on a CPU, 2 cores" in page  # headed by command and machine
    # The message's figures are the run's: 123.4 / 10.0, 18.0 / 9.0 and 8.8 / 8.0.
    assert "poll_mux 12.3× (10.0 → 123.4 µs at 10,000), select_mux 2.0× (9.0 → 18.0 µs at 1,000)." in page
    assert "epoll_mux 1.1× (8.0 → 8.8 µs at 10,000)" in page


def prefork_result(
    name: str, workers: int | None, rate: float, server: float, client: float
) -> dict[str, Any]:
    result = {"server": name, "workers": workers, "connections": 100, "size": 64, "failure": None}
    result["loadgen_cpu"] = None
    return result | {
        "round_trips_per_second": rate,
        "server_cpu_percent": server,
        "client_cpu_percent": client,
        "server_cpu_us_per_round_trip": 1e6 * server / 100 / rate,
    }


PREFORK_RUN: dict[str, Any] = {
    "command": "python3 -m bench.growth --study prefork",
    "started": "2026-01-01T00:00:00Z",
    "machine": MACHINE | {"server_cpu": None, "loadgen_cpu": None},
    "settings": {"seconds": 1.0, "warmup": 1.0, "repeats": 3},
    "loads": [[100, 64]],
    "default_workers": 2,
    "results": [
        prefork_result("prefork 1 worker", 1, 100_000.0, 99.0, 60.0),
        prefork_result("prefork 2 workers", 2, 150_000.0, 130.0, 70.0),
        prefork_result("epoll_mux", None, 101_000.0, 99.0, 60.0),
    ],
}


def test_the_prefork_section_is_rendered_from_the_run() -> None:
    section = growth.prefork_section(PREFORK_RUN)
    assert "server not pinned" in section
    row = "| 100 × 64 B, load generator not pinned | prefork 2 workers (default: one per CPU) | 150,000 |"
    assert row in section
    assert (
        "Round trips against 1 worker's: 100 × 64 B, load generator not pinned: 2 workers 1.50×." in section
    )
    # 100,000 / (99 + 60), 150,000 / (130 + 70), 101,000 / (99 + 60): round trips per 1% of a core
    assert "used 159% to 200% of one core" in section and "from 629 to 750." in section


def test_the_prefork_page_holds_the_committed_run_and_would_notice_another() -> None:
    page = (report.ROOT / "docs" / "prefork.md").read_text(encoding="utf-8")
    run = report.load(report.RUNS / "prefork.json")
    assert growth.prefork_section(run) in page
    moved = copy.deepcopy(run)
    moved["results"][0]["round_trips_per_second"] *= 1.5
    assert growth.prefork_section(moved) not in page
