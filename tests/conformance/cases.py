"""The suite's numbering: groups of cases, each case a stable id, a one-line requirement
and a timeout.

A test in tests/conformance is one case: `@case("2.1", "...", timeout=30)` above it.
The id's first number is its group, and the group says what the case needs from the
server under test; a server that cannot give that (an already running `--target` has
no process to measure) gets "not applicable" for the whole group, never a pass.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TypeVar

import pytest


class Needs(str, Enum):
    """What a group of cases needs from the server under test, from least to most."""

    ADDRESS = "address"  # only somewhere to connect
    PROCESS = "process"  # its process too: memory, file descriptors, threads
    LIFECYCLE = "lifecycle"  # io-models' command line: ready line, signals, exit codes


@dataclass(frozen=True)
class Group:
    number: int
    title: str
    needs: Needs
    summary: str


GROUPS = {
    group.number: group
    for group in [
        Group(1, "Data fidelity", Needs.ADDRESS, "every byte comes back in order and unchanged, however cut"),
        Group(2, "Streaming", Needs.ADDRESS, "the echo arrives while the client is still sending"),
        Group(
            3,
            "Concurrency and isolation",
            Needs.ADDRESS,
            "each client gets its own bytes; none stalls others",
        ),
        Group(
            4,
            "Close behaviour",
            Needs.ADDRESS,
            "half-close gets all that is owed, then FIN; resets hurt no one",
        ),
        Group(
            5, "Flow control", Needs.PROCESS, "a client that does not read cannot grow the server's memory"
        ),
        Group(6, "Resource hygiene", Needs.PROCESS, "descriptors and threads return to their baseline"),
        Group(
            7,
            "Lifecycle",
            Needs.LIFECYCLE,
            "ready line, graceful stop, exit codes: the io-models CLI contract",
        ),
        Group(
            8,
            "Limits",
            Needs.LIFECYCLE,
            "--max-connections, --idle-timeout, --drain-timeout hold; past fd 1,024 too",
        ),
        Group(
            9, "Faults", Needs.PROCESS, "out of descriptors, reset storms, slow peers, signals: all survived"
        ),
        Group(10, "Scale", Needs.LIFECYCLE, "ten thousand connections at once; churn leaves no trace"),
    ]
}


def group_of(case_id: str) -> Group:
    return GROUPS[int(case_id.split(".", 1)[0])]


Test = TypeVar("Test", bound=Callable[..., object])
DECLARED: dict[str, str] = {}  # case id -> title, as each @case is applied on import


def all_cases() -> dict[str, str]:
    """Every case id of the suite, with its title: imports each test module of this package."""
    for module in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if module.name.startswith("test_"):
            importlib.import_module(f"{__package__}.{module.name}")
    return DECLARED


def case(case_id: str, title: str, *, timeout: float) -> Callable[[Test], Test]:
    """Number a test as a conformance case; its timeout also bounds it under pytest-timeout."""
    group_of(case_id)  # an id outside every group is a mistake at import, not in a report
    DECLARED[case_id] = title

    def number(test: Test) -> Test:
        marked: Test = pytest.mark.case(id=case_id, title=title, timeout=timeout)(test)
        return pytest.mark.timeout(timeout)(marked)  # type: ignore[no-any-return]

    return number
