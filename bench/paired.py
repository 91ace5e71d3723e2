"""Paired runs for one target: a server against its reference, run after run.

A fresh process of each, pinned to the same CPU, both warmed up; then `pairs` pairs of
runs in alternating order (server then reference, reference then server, ...), each
settled as bench.measure.Trial settles. A pair's two runs are seconds apart, so a
neighbour that slows the machine for a while slows both; the alternation cancels a
drift that would favour whichever ran second. Every run's raw figures are kept;
bench.report takes one ratio per pair from them and judges the target on the median
of those ratios and its interval (bench.stats).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

from bench.contenders import Contender
from bench.measure import Scenario, Settings, Trial, raw
from bench.report import Target, describe_target


def measure_target(
    target: Target, server: Contender, reference: Contender, settings: Settings, step: Callable[[str], None]
) -> dict[str, Any]:
    """settings.repeats pairs of settings.seconds runs each, after settings.warmup."""
    scenario, started = Scenario("throughput", target.connections, target.size), time.monotonic()
    result: dict[str, Any] = {
        "server": target.server,
        "reference": target.reference,
        "connections": target.connections,
        "size": target.size,
        "at_least": target.at_least,
        "seconds": settings.seconds,
        "warmup": settings.warmup,
        "pairs": settings.repeats,
        "failure": None,
        "runs": [],  # in the order they ran: {"who": "server" or "reference", "pair": i, ...}
    }
    with contextlib.ExitStack() as stack:
        trials = {}
        for who, contender in (("server", server), ("reference", reference)):
            trial = Trial(contender, scenario, settings)
            stack.callback(trial.close)
            trials[who] = trial
        for trial in trials.values():
            trial.warm_up()
        for pair in range(settings.repeats):
            order = ("server", "reference") if pair % 2 == 0 else ("reference", "server")
            for who in order:
                trial = trials[who]
                if trial.failure:
                    break
                step(f"{describe_target(target)}: pair {pair + 1}, {trial.contender.name}")
                trial.run()
                if not trial.failure:
                    [run] = raw(trial.runs[-1:])
                    result["runs"].append({"who": who, "pair": pair} | run)
        failures = [f"{t.contender.name}: {t.failure}" for t in trials.values() if t.failure]
        result["failure"] = "; ".join(failures) or None
    result["wall_seconds"] = time.monotonic() - started  # start-up, settling and closing included
    return result
