"""The registry: every model, read from the declaration in its own `<model>/__init__.py`.

A model is a folder at the top of the repository with a `server.py`; its `__init__.py`
declares `MODEL` (common.declaration.Model). Nothing else lists the models by hand: the
suite, tox, the benchmark, the docs and their tables all read this module, so a new
model is one new folder.
"""

from __future__ import annotations

import importlib
from functools import cache
from pathlib import Path

from common.declaration import Model

ROOT = Path(__file__).resolve().parent.parent

# The sections of every server.py, in the order a reader meets them. The side-by-side
# view aligns the servers on them; tests/test_layout.py holds every server to them.
SECTIONS = ("listen", "wait", "accept", "read", "write", "close", "stop")


@cache
def models() -> tuple[Model, ...]:
    """Every model, in the reading order."""
    found = []
    for server in sorted(ROOT.glob("*/server.py")):
        package = server.parent.name
        declared = getattr(importlib.import_module(package), "MODEL", None)
        if not isinstance(declared, Model) or declared.name != package:
            raise LookupError(f"{package}/__init__.py must declare MODEL = Model({package!r}, ...)")
        found.append(declared)
    ordered = tuple(sorted(found, key=lambda model: model.order))
    if len({model.order for model in ordered}) != len(ordered):
        raise LookupError(f"two models share a place in the reading order: {[m.order for m in ordered]}")
    return ordered


def names() -> tuple[str, ...]:
    return tuple(model.name for model in models())


def model(name: str) -> Model:
    for declared in models():
        if declared.name == name:
            return declared
    raise LookupError(f"unknown model {name!r}; the models are {', '.join(names())}")
