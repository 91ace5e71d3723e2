"""bench.cost's machinery on synthetic data: callgrind's totals, the N/2N difference, the
fit, and the page rendered from a small run. No valgrind runs here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench import cost

CALLGRIND_FILE = """\
# callgrind format
version: 1
creator: callgrind-3.19.0
pid: 4242
cmd:  python3 -m epoll_mux --port 0
events: Ir
fn=(1) main
5 1000
summary: 123456789
totals: 123456780
"""


def test_totals_line_wins_over_summary() -> None:
    assert cost.callgrind_instructions(CALLGRIND_FILE) == 123456780


def test_summary_line_alone() -> None:
    assert cost.callgrind_instructions(CALLGRIND_FILE.replace("totals: 123456780\n", "")) == 123456789


def test_a_file_without_totals_is_an_error() -> None:
    with pytest.raises(ValueError, match="totals"):
        cost.callgrind_instructions("events: Ir\nfn=(1) main\n5 1000\n")


def test_instructions_sum_every_process(tmp_path: Path) -> None:
    (tmp_path / "callgrind.out.1").write_text(CALLGRIND_FILE)
    (tmp_path / "callgrind.out.2").write_text(CALLGRIND_FILE.replace("123456780", "20"))
    (tmp_path / "unrelated.txt").write_text("totals: 5\n")
    assert cost.instructions(tmp_path) == 123456800


def test_per_message_is_the_difference_over_n() -> None:
    startup = 500_000_000
    assert cost.per_message(startup + 1000 * 7000, startup + 2000 * 7000, 1000) == 7000


def test_fit_recovers_the_coefficients() -> None:
    a, b = 0.0004, 1.5
    points = {f"s{i}": (i * 5000.0, 2.0 + i % 3, a * i * 5000.0 + b * (2.0 + i % 3)) for i in range(1, 7)}
    model = cost.fit(points)
    assert model["a_us_per_instruction"] == pytest.approx(a)
    assert model["b_us_per_syscall"] == pytest.approx(b)
    assert model["r_squared"] == pytest.approx(1.0)
    assert model["servers"]["s3"]["predicted_us"] == pytest.approx(points["s3"][2])


def test_parse_annotate() -> None:
    text = """\
--------------------------------------------------------------------------------
Ir                    file:function
--------------------------------------------------------------------------------
1,234,567 (40.00%)  ???:_PyEval_EvalFrameDefault [/usr/bin/python3.11]
   12,000 ( 0.40%)  ???:epoll_wait [/usr/lib/libc.so.6]
"""
    assert cost.parse_annotate(text) == {
        "???:_PyEval_EvalFrameDefault [/usr/bin/python3.11]": 1234567,
        "???:epoll_wait [/usr/lib/libc.so.6]": 12000,
    }


def row(instructions: float, syscalls: float) -> dict[str, Any]:
    return {"instructions_per_message": instructions, "syscalls_per_message": syscalls}


def small_run() -> dict[str, Any]:
    main, headline = cost.MAIN.key, cost.HEADLINE.key
    return {
        "command": "python3 -m bench.cost",
        "started": "2026-01-02T03:04:05Z",
        "machine": {
            "cpu": "Test CPU",
            "cores": 2,
            "kernel": "Linux 6",
            "python": "3.11.7",
            "server_cpu": None,
            "loadgen_cpu": None,
            "valgrind": "valgrind-3.19.0",
            "strace": "strace -- version 6.1",
        },
        "idle_seconds": 10.0,
        "figures": {
            "epoll_mux": {main: row(21_500, 3.0), headline: row(20_000, 2.5)},
            "asyncio_io": {main: row(23_225, 6.0), headline: row(22_000, 4.0)},
            "asyncio Protocol": {main: row(19_000, 6.0), headline: row(18_000, 4.0)},
            "uring_io": {main: {"unavailable": "under callgrind: no io_uring"}},
        },
        "figures_with_hog": {"epoll_mux": {main: row(21_510, 0)}, "asyncio_io": {main: row(23_225, 0)}},
        "measured_cpu": {"epoll_mux": 12.0, "asyncio_io": 11.7, "asyncio Protocol": 10.9},
        "measured_from": "python -m bench, started 2026-01-01T00:00:00Z",
    }


def test_page_rendered_from_the_run() -> None:
    page = cost.page(small_run())
    assert "Command: `python3 -m bench.cost`" in page
    assert "Test CPU, 2 cores" in page
    assert "| asyncio_io | 23,225 | 6.00 | 22,000 | 4.00 | +0.00% |" in page
    assert "| epoll_mux | 21,500 | 3.00 | 20,000 | 2.50 | +0.05% |" in page
    assert "asyncio_io costs more (+4,225 instructions, +22.2%)" in page
    assert "largest difference from the first run is 0.05% (within 1%)" in page
    assert "uring_io at 1 × 64 B: under callgrind: no io_uring" in page


def test_chart_renders(tmp_path: Path) -> None:
    cost.chart(small_run(), tmp_path / "cost.png")
    assert (tmp_path / "cost.png").stat().st_size > 10_000
