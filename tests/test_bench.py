"""The benchmark's load generator measures real round trips, and notices a wrong echo."""

from __future__ import annotations

import pytest

from bench.loadgen import Load, run
from tests.support import ServerProcess, spec_for

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
