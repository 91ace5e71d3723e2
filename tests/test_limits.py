"""common/limits.py's IdleTimer, on its own: pure Python, no sockets, a clock we move.

Its docstring promises that finding the expired clients and the time to the next
expiry costs O(expired), not O(clients), however the clients were touched. A plain dict
with pop-and-reinsert broke that: each touch left a dead slot at the front, and
reaching the first live client meant stepping over all of them, until the next resize.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from types import SimpleNamespace

import pytest

from common import limits
from common.limits import TCP_INFO_BYTES_ACKED, IdleTimer

CLIENTS = 10_000
ROUNDS = 30  # looks at the cost, as the dead slots pile up and a resize clears them
TOUCHES_PER_ROUND = 1_000
REPEATS = 20  # the cheapest of these counts: noise only ever adds time
# A gross bound, not a benchmark: with a dict the cost grew 10 to 15 times between
# resizes; with constant cost the ratio stays near 1, whatever the machine's load.
MAX_GROWTH = 4.0


class FakeSocket:
    """What the timer asks of a client's socket: how many bytes the peer acknowledged."""

    def __init__(self) -> None:
        self.acked = 0

    def fileno(self) -> int:
        return -1  # SIOCOUTQ on -1 fails: nothing unacknowledged, as for a silent client

    def getsockopt(self, level: int, option: int, size: int, /) -> bytes:
        return bytes(TCP_INFO_BYTES_ACKED) + struct.pack("Q", self.acked)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """The timer's clock, moved by hand: `clock.now += 2`."""
    fake = SimpleNamespace(now=1000.0)
    monkeypatch.setattr(limits, "time", SimpleNamespace(monotonic=lambda: fake.now))
    return fake


def cost(operation: Callable[[], object]) -> float:
    """The cheapest of REPEATS runs of operation, in seconds."""
    best = float("inf")
    for _ in range(REPEATS):
        started = time.perf_counter()
        operation()
        best = min(best, time.perf_counter() - started)
    return best


def test_finding_the_idlest_does_not_grow_with_touches() -> None:
    sockets = {client: FakeSocket() for client in range(CLIENTS)}
    timer: IdleTimer[int] = IdleTimer(3600.0, sockets.__getitem__)  # nobody expires here
    for client in range(CLIENTS):
        timer.touch(client)

    def look() -> None:
        timer.timeout()
        timer.expired()

    fresh = cost(look)
    worst = fresh
    oldest = 0
    for _ in range(ROUNDS):
        for _ in range(TOUCHES_PER_ROUND):  # the idlest becomes the most recent
            timer.touch(oldest)
            oldest = (oldest + 1) % CLIENTS
        worst = max(worst, cost(look))
    assert worst < MAX_GROWTH * fresh + 2e-6, (
        f"timeout() + expired() took {worst * 1e6:.1f} us after touches, {fresh * 1e6:.1f} us fresh"
    )


def test_silent_clients_expire_idlest_first(clock: SimpleNamespace) -> None:
    sockets = {name: FakeSocket() for name in "abc"}
    timer: IdleTimer[str] = IdleTimer(1.0, sockets.__getitem__)
    for name in "abc":
        timer.touch(name)
        clock.now += 0.1
    timer.touch("a")  # now the most recent
    assert timer.timeout() == pytest.approx(0.8)  # b, touched 0.2 s ago
    clock.now += 1.0
    assert timer.expired() == ["b", "c", "a"]
    assert timer.expired() == [] and timer.timeout() is None  # they left the timer


def test_a_client_still_acknowledging_is_not_idle(clock: SimpleNamespace) -> None:
    reader = FakeSocket()
    timer: IdleTimer[str] = IdleTimer(1.0, lambda client: reader)
    timer.touch("reader")
    timer.draining("reader")  # a first look notes what it has acknowledged so far
    for _ in range(5):  # no send() touches it: only its acknowledgements tell
        clock.now += 1.0
        reader.acked += 1_400_000
        assert timer.expired() == [], "a client taking 1.4 MB a second was taken for idle"
    clock.now += 1.0  # and now it stops reading
    assert timer.expired() == ["reader"]
