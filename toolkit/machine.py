"""The machine a run measured on, as every tool's JSON records it: its "machine" key.

The bench adds where it pinned the server and the load generator (bench.__main__.machine);
the conformance report adds the interpreter's implementation. Standard library only.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import TypedDict


class Machine(TypedDict):
    cpu: str  # the model name from /proc/cpuinfo, else what platform knows
    cores: int | None
    kernel: str  # "Linux 6.1.0"
    python: str  # platform.python_version()


def describe() -> Machine:
    cpu = platform.processor() or platform.machine()
    try:
        model_lines = [
            line for line in Path("/proc/cpuinfo").read_text().splitlines() if "model name" in line
        ]
        cpu = model_lines[0].split(":", 1)[1].strip()
    except (OSError, IndexError):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "kernel": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }
