"""ruff and mypy --strict, run by the same command as every other test; and the tools that
must run on a bare python3 (the docs tools, the generator, the report) do."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    "command",
    [["ruff", "check", "."], ["ruff", "format", "--check", "."], ["mypy"]],
    ids=["ruff-check", "ruff-format", "mypy-strict"],
)
def test_static_checks_pass(command: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", *command], cwd=ROOT, check=False, capture_output=True, text=True, timeout=280
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "tool", ["docs.side_by_side", "docs.syscalls", "toolkit.generate", "tests.conformance.report"]
)
def test_tool_runs_on_the_standard_library_alone(tool: str) -> None:
    # -S: no site-packages, so a tool that imports psutil, pytest or hypothesis fails here,
    # as it would on a fresh checkout with nothing installed.
    result = subprocess.run(
        [sys.executable, "-S", "-m", tool, "--help"],
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
