"""A new model is one new folder: every consumer finds it with no other edit.

In a copy of the repository, two throwaway models are added, each a folder with its
declaration and a page in docs/: `toy_mux` (select_mux renamed) and `toy_uring`, whose
one need this machine lacks. After `python3 -m toolkit.generate`, the suite collects
and runs them, tox lists them, the benchmark lists them, the side-by-side view shows
them and the docs' tables have them; `toy_uring` exits 1 with one line, and the suite
reports it n/a with that line as the reason, never a fail or a silent skip.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from toolkit.registry import ROOT

# The module's tests share one copy of the repository: keep them on one worker.
pytestmark = [pytest.mark.timeout(120), pytest.mark.xdist_group("registry")]
TOYS = ("toy_mux", "toy_uring")
MISSING = "toy_uring needs io_uring: this kernel refuses it: Operation not permitted"
# toy_mux's declaration, but for one need whose probe says this machine lacks it.
TOY_URING = """from dataclasses import replace

from common.declaration import Need
from toy_mux import FD_SETSIZE, MODEL as TOY_MUX

MODEL = replace(
    TOY_MUX,
    name="toy_uring",
    order=99,
    builds_on="toy_mux",
    waits="toy_uring's wait",
    costs="toy_uring's cost",
    needs=(Need("io_uring", lambda: "this kernel refuses it: Operation not permitted"),),
)
"""


def copy_model(repository: Path, source: str, name: str, declaration: str | None = None) -> None:
    """A model folder copied from source under a new name, with its page in docs/."""
    folder = repository / name
    shutil.copytree(repository / source, folder, ignore=shutil.ignore_patterns("__pycache__"))
    for path in folder.glob("*.py"):
        path.write_text(path.read_text().replace(source, name))
    init = folder / "__init__.py"
    init.write_text(declaration or re.sub(r"order=\d+", "order=98", init.read_text()))
    (repository / "docs" / f"{name}.md").write_text(f"# {name}\n\nA throwaway model.\n")


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository's files (tracked, or new and not ignored), the two toys added, generated."""
    copy = tmp_path_factory.mktemp("repository")
    listed = run(ROOT, "git", "ls-files", "-z", "--cached", "--others", "--exclude-standard").stdout
    for name in filter(None, listed.split("\0")):
        if (ROOT / name).is_file() and not (ROOT / name).is_symlink():  # not .venv, nor a deleted file
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, copy / name)
    copy_model(copy, "select_mux", "toy_mux")
    copy_model(copy, "select_mux", "toy_uring", TOY_URING)
    assert "rewrote: README.md" in python(copy, "toolkit.generate").stdout
    python(copy, "toolkit.generate", "--check")  # and then nothing is stale
    return copy


def run(cwd: Path, *command: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == expect, f"{command}: exit {result.returncode}\n{result.stdout}{result.stderr}"
    return result


def python(cwd: Path, module: str, *args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
    return run(cwd, sys.executable, "-m", module, *args, expect=expect)


def test_the_suite_collects_them_by_default(repository: Path) -> None:
    collected = python(repository, "pytest", "-p", "no:xdist", "--collect-only", "-q", "tests/conformance")
    for toy in TOYS:
        assert f"[{toy}" in collected.stdout, f"no test of {toy} collected"


def test_a_missing_need_is_one_line_and_not_applicable(repository: Path, tmp_path: Path) -> None:
    refused = python(repository, "toy_uring", "--port", "0", expect=1)
    assert refused.stderr == f"error: {MISSING}\n"
    args = ["-p", "no:xdist", "tests/conformance", "--models", ",".join(TOYS), "--cases", "1.1,7.1"]
    ran = python(repository, "pytest", *args, "--report", str(tmp_path), "-rs")
    report = json.loads((tmp_path / "conformance.json").read_text())
    verdicts = {(r["case"], r["server"]): (r["verdict"], r["reason"]) for r in report["results"]}
    assert verdicts == {
        **{(case, "toy_mux"): ("pass", "") for case in ("1.1", "7.1")},
        **{(case, "toy_uring"): ("n/a", f"not applicable: {MISSING}") for case in ("1.1", "7.1")},
    }
    assert "2 pass, 2 n/a" in ran.stdout and MISSING in ran.stdout  # said in the terminal, too
    markdown, page = (tmp_path / "conformance.md").read_text(), (tmp_path / "conformance.html").read_text()
    assert f"toy_uring, n/a (1.1, 7.1): not applicable: {MISSING}" in markdown
    assert f'<td class="na" title="not applicable: {MISSING}">' in page


def test_tox_has_an_env_for_each(repository: Path) -> None:
    envs = python(repository, "tox", "-l").stdout.split()
    assert {f"py311-{toy}" for toy in TOYS} <= set(envs)
    set_env = python(repository, "tox", "config", "-e", "py311-toy_mux", "-k", "set_env").stdout
    assert "MODEL=toy_mux" in set_env.replace(" ", "")


def test_the_benchmark_lists_them(repository: Path) -> None:
    listed = python(repository, "bench", "--list").stdout
    assert re.search(r"^model\s+toy_mux$", listed, re.MULTILINE), listed
    assert f"toy_uring  (skipped: {MISSING})" in listed


def test_side_by_side_shows_them(repository: Path, tmp_path: Path) -> None:
    python(repository, "docs.side_by_side", "--all", "-o", str(tmp_path / "all.html"))
    page = (tmp_path / "all.html").read_text()
    assert all(f"{toy}/server.py" in page for toy in TOYS)


def test_the_docs_tables_have_them(repository: Path) -> None:
    readme = (repository / "README.md").read_text()
    guide = (repository / "docs" / "README.md").read_text()
    comparison = (repository / "docs" / "comparison.md").read_text()
    header = next(line for line in comparison.splitlines() if line.startswith("| | [blocking]"))
    assert header.endswith("| [toy_mux](toy_mux.md) | [toy_uring](toy_uring.md) |"), header
    for toy in TOYS:
        assert f"| [`{toy}`]({toy}/server.py) |" in readme
        assert f"| [`{toy}`](../{toy}/server.py) | [{toy}.md]({toy}.md) |" in guide
    assert "| [`toy_uring`](toy_uring/server.py) | toy_uring's wait | toy_uring's cost |" in readme
    lines = (repository / "toy_mux" / "server.py").read_text().count("\n")
    assert f"[{lines}](../toy_mux/server.py)" in comparison  # its code-size cell, counted
    assert 'io-toy-mux = "toy_mux.server:main"' in (repository / "pyproject.toml").read_text()
