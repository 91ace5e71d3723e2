"""How a model declares itself, once, in its own `<model>/__init__.py`.

Everything that lists the models (the conformance suite, tox, the benchmark, the docs
and their tables) reads these declarations through `toolkit.registry`, so adding a
model is one new folder: its server, its declaration and its docs page.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum


class Family(str, Enum):
    """Who waits, and for what: the families of the IO-model map (docs/io-models.md)."""

    PER_CONNECTION = "a thread or process per connection"
    POLLING = "polling"
    READINESS = "readiness multiplexing"
    SIGNALS = "signal-driven"
    COMPLETION = "completion"
    COROUTINES = "coroutines"


Probe = Callable[[], str | None]  # None when this machine has it, else why not


@dataclass(frozen=True)
class Need:
    """Something a model needs beyond a POSIX system with Python, and how to check for it."""

    what: str  # as the error line names it: "Linux's epoll"
    probe: Probe


def module_attribute(module: str, attribute: str, missing: str) -> Need:
    """A need met when `module.attribute` exists (select.epoll exists only on Linux)."""

    def probe() -> str | None:
        return None if hasattr(importlib.import_module(module), attribute) else missing

    return Need(f"{module}.{attribute}", probe)


def package(name: str, install: str) -> Need:
    """A need met when an optional package is installed."""

    def probe() -> str | None:
        return None if importlib.util.find_spec(name) else f"it is not installed ({install})"

    return Need(name, probe)


@dataclass(frozen=True)
class Model:
    name: str  # the package: `python3 -m NAME`
    order: int  # place in the reading order
    family: Family
    builds_on: str | None  # the model a reader should read just before this one
    changes: str  # one line: what it changes from builds_on
    waits: str  # one line: how it waits
    costs: str  # one line: what it costs
    # For the picture of where a byte waits (docs/waits.svg): who picks an arriving byte
    # up, in which call; and where a byte owed to a slow reader waits, and on what.
    picks_up: str
    owed: str
    needs: tuple[Need, ...] = ()
    # The most connections it can ever hold, whatever --max-connections says; None: no cap.
    connection_cap: int | None = None
    cap_reason: str = ""  # why the cap is where it is, in a few words
    # Conformance cases it cannot meet, by design, each with the reason (case id -> why):
    # the suite reports them as deviations, and fails one that starts passing.
    deviations: Mapping[str, str] = field(default_factory=dict)

    def missing(self) -> str | None:
        """Why this machine cannot run the model (one line), or None if it can."""
        for need in self.needs:
            if (reason := need.probe()) is not None:
                return f"{self.name} needs {need.what}: {reason}"
        return None

    def require(self) -> None:
        """Exit 1 with one line if this machine lacks a need; the suite reports it n/a."""
        if (reason := self.missing()) is not None:
            raise SystemExit(f"error: {reason}")
