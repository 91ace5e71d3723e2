"""The side-by-side reading stays possible: every server.py keeps the shared shape.

These checks read source, not behaviour: the section banners in one order, the shared
method names, the line budget, stdlib-only imports, and a common/ that never does a
server's IO. A model that drifts from the others fails here before a reader notices.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from docs.side_by_side import BANNER
from toolkit import registry

ROOT = Path(__file__).resolve().parent.parent

LINE_BUDGET = 200
STEPS = ["listen", "accept", "read", "write", "close", "shutdown"]
# Methods every EchoServer has, and the per-connection steps each family names alike.
SHARED_METHODS = {"listen", "serve", "stop_accepting", "close_all"}
LOOP_METHODS = {"accept_client", "read", "write", "close_client"}
MODEL_METHODS = {
    "blocking": {"accept_client", "serve_client", "close_client"},
    "nonblocking": LOOP_METHODS,
    "select_mux": LOOP_METHODS,
    "selectors_mux": LOOP_METHODS,
    "epoll_mux": LOOP_METHODS,
    "asyncio_io": set(),  # its per-connection steps are asyncio.Protocol's callbacks
}
# What a server module in common/ must never call: that IO belongs in server.py.
SERVER_IO = {"accept", "recv", "recv_into", "send", "sendall", "select", "poll", "register", "modify"}


def source(model: str) -> str:
    return (ROOT / model / "server.py").read_text()


@pytest.mark.parametrize("model", registry.names())
def test_server_fits_in_one_sitting(model: str) -> None:
    lines = source(model).splitlines()
    assert len(lines) <= LINE_BUDGET, f"{model}/server.py has {len(lines)} lines"


@pytest.mark.parametrize("model", registry.names())
def test_docstring_teaches_the_model(model: str) -> None:
    docstring = ast.get_docstring(ast.parse(source(model))) or ""
    assert docstring.startswith(f"{model}: "), "the docstring opens with the model's name"
    assert "How it waits" in docstring


@pytest.mark.parametrize("model", registry.names())
def test_sections_in_the_shared_order(model: str) -> None:
    # A banner names one step ("# --- read ---") or two ("# --- read and write: ..."); the
    # side-by-side view aligns the servers on the same banners.
    banners = [banner.groups() for line in source(model).splitlines() if (banner := BANNER.match(line))]
    steps = [step for pair in banners for step in pair if step]
    assert sorted(steps, key=STEPS.index) == sorted(STEPS, key=STEPS.index), steps
    per_connection = [step for step in steps if step in ("accept", "read", "write", "close")]
    assert per_connection == ["accept", "read", "write", "close"]
    assert steps[-1] == "shutdown"


@pytest.mark.parametrize("model", registry.names())
def test_the_waits_are_marked(model: str) -> None:
    assert "# WAIT" in source(model), "the place the server blocks is marked '# WAIT'"


@pytest.mark.parametrize("model", registry.names())
def test_shared_names(model: str) -> None:
    tree = ast.parse(source(model))
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    methods = {item.name for item in classes["EchoServer"].body if isinstance(item, ast.FunctionDef)}
    methods |= {item.name for item in classes["EchoServer"].body if isinstance(item, ast.AsyncFunctionDef)}
    assert SHARED_METHODS | MODEL_METHODS[model] <= methods
    assert any(isinstance(node, ast.FunctionDef) and node.name == "main" for node in tree.body)


@pytest.mark.parametrize("model", registry.names())
def test_servers_import_only_the_standard_library_and_common(model: str) -> None:
    for node in ast.walk(ast.parse(source(model))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            assert top in {*sys.stdlib_module_names, "common", model}, f"{model} imports {name}"


def test_common_does_no_server_io() -> None:
    for path in (ROOT / "common").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                assert node.func.attr not in SERVER_IO, f"{path.name} calls .{node.func.attr}()"


def test_ci_runs_the_readme_test_command() -> None:
    ci_command = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci_command == "./run-tests"
    assert f"\n{ci_command}\n" in (ROOT / "README.md").read_text()
