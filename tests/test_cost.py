"""bench.cost's machinery on synthetic data: callgrind's totals, the N/2N difference, the
fit, and the page rendered from a small run. No valgrind runs here."""

from __future__ import annotations

import json
import socketserver
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from bench import cost
from bench.report import FULL_RUN

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
    k, a, b = 6.5, 0.0004, 1.5
    points = {f"s{i}": (i * 5000.0, 2.0 + i % 3, k + a * i * 5000.0 + b * (2.0 + i % 3)) for i in range(1, 7)}
    points["blocking"] = (7000.0, 10.0, 40.0)  # handed off: far above the line, and left out of it
    model = cost.fit(points)
    assert model["k_us_per_message"] == pytest.approx(k)
    assert model["a_us_per_instruction"] == pytest.approx(a)
    assert model["b_us_per_syscall"] == pytest.approx(b)
    assert model["r_squared"] == pytest.approx(1.0)
    assert model["servers"]["s3"]["predicted_us"] == pytest.approx(points["s3"][2])
    assert model["servers"]["blocking"]["predicted_us"] == pytest.approx(k + a * 7000 + b * 10)


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
    assert "| asyncio_io | 23,225 | 6.00 | 22,000 | 4.00 |" in page
    assert "| epoll_mux | 21,500 | 3.00 | 20,000 | 2.50 |" in page
    assert "| epoll_mux | 21,500 | 21,510 | +0.05% |" in page  # the repeat with a CPU hog
    assert "asyncio_io costs more (+4,225 instructions, +22.2%)" in page
    assert "largest difference from the first run is 0.05% (within 1%)" in page
    assert "uring_io at 1 × 64 B: under callgrind: no io_uring" in page


def test_chart_renders(tmp_path: Path) -> None:
    cost.chart(small_run(), tmp_path / "cost.png")
    assert (tmp_path / "cost.png").stat().st_size > 10_000


def test_socketserver_forking_cannot_hold_more_than_max_children() -> None:
    assert cost.cannot_hold("socketserver forking", cost.MAIN) is None
    reason = cost.cannot_hold("socketserver forking", cost.HEADLINE)
    assert reason is not None and "max_children" in reason
    assert cost.cannot_hold("forking", cost.HEADLINE) is None


def test_merge_replaces_only_the_measured_servers() -> None:
    run = small_run()
    fresh: dict[str, Any] = {
        "command": "python3 -m bench.cost --servers epoll_mux --merge",
        "started": "2026-01-03T00:00:00Z",
        "figures": {"epoll_mux": {cost.MAIN.key: row(21_400, 3.0)}},
        "figures_with_hog": {"epoll_mux": {cost.MAIN.key: row(21_401, 0)}},
        "hotspots": {},
    }
    out = cost.merged(run, fresh)
    assert out["figures"]["epoll_mux"] == fresh["figures"]["epoll_mux"]
    assert out["figures"]["asyncio_io"] == run["figures"]["asyncio_io"]
    assert out["command"] == run["command"]  # the page stays headed by the run it came from
    page = cost.page(out)
    assert (
        "Measured again, and merged in: epoll_mux, by `python3 -m bench.cost --servers epoll_mux --merge`"
        in page
    )


def test_asleep_tells_a_sleeping_session_from_a_busy_one() -> None:
    sleeping = subprocess.Popen(["sleep", "30"], start_new_session=True)
    busy = subprocess.Popen(["sh", "-c", "while :; do :; done"], start_new_session=True)
    try:
        cost.wait_for(lambda: cost.asleep([sleeping.pid]), 10, "sleep to sleep")
        assert not any(cost.asleep([busy.pid]) for _ in range(20))
    finally:
        for process in (sleeping, busy):
            process.kill()
            process.wait()


def test_question_b_says_when_the_premise_does_not_hold() -> None:
    run = small_run()
    bulk = cost.BULK.key
    run["figures"]["blocking"] = {bulk: row(8_000, 2.0) | {"syscalls_by_name": {"futex": 0.5}}}
    run["figures"]["socketserver threads"] = {bulk: row(6_000, 2.0) | {"syscalls_by_name": {}}}
    assert "The timed part (`--switches`) was not run." in cost.page(run)
    run["switches_command"] = "python3 -m bench.cost --switches"
    run["switches"] = {
        "blocking": {"voluntary": 1.0, "involuntary": 0.1, "cpu_us": 9.0},
        "socketserver threads": {"voluntary": 1.5, "involuntary": 0.2, "cpu_us": 10.0},
    }
    page = cost.page(run)
    assert "blocking executes 1.33× the instructions of socketserver threads per message (+2,000)" in page
    assert "| `futex` | 0.50 | 0.00 |" in page
    assert "(0.90×), so here the premise does not hold" in page
    run["switches"]["blocking"]["cpu_us"] = 12.0
    assert "(1.20×), so blocking does spend more CPU per message" in cost.page(run)


def test_a_repeat_beyond_one_percent_is_named_with_its_reason() -> None:
    run = small_run()
    run["figures"]["nonblocking"] = {cost.MAIN.key: row(30_000, 9.0)}
    run["figures_with_hog"]["nonblocking"] = {cost.MAIN.key: row(31_500, 0)}
    page = cost.page(run)
    assert "is 5.00% (beyond 1%). Beyond 1%: nonblocking. nonblocking: it tries every socket" in page
    assert "| nonblocking | 30,000 | 31,500 | +5.00% |" in page


class Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


def test_drive_settles_before_every_round() -> None:
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        settled = []
        host, port = server.server_address[:2]
        cost.drive((str(host), port), cost.Load(2, 64, 3), 3, lambda: settled.append(1))
        server.shutdown()
    assert len(settled) == 3


def test_the_fit_reads_the_committed_bench_run() -> None:
    """cost.json's measured CPU is the committed full run's, not an older one's."""
    saved = json.loads(cost.SAVED.read_text())
    full = json.loads(FULL_RUN.read_text())
    assert saved["measured_from"] == cost.measured_from(full), "stale: run python3 -m bench.cost --render"
    assert saved["measured_cpu"] == cost.measured_cpu(full)


def test_question_a_names_the_calls_only_asyncio_io_makes() -> None:
    calls = {"epoll_wait": 1.0, "mmap": 1.0, "recvfrom": 1.0}
    ours = {"syscalls_per_message": 6.0, "syscalls_by_name": calls}
    theirs = {"syscalls_per_message": 3.0, "syscalls_by_name": {"epoll_wait": 1.0, "recvfrom": 1.0}}
    text = cost.syscalls_beside(ours, theirs)
    assert "`mmap` 1.00" in text and "epoll_wait" not in text
    assert "are the minimal echo's" in cost.syscalls_beside(theirs, theirs)
