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
# A step a model does not need keeps its banner, with one line saying why.
STEPS = list(registry.SECTIONS)
# Methods every EchoServer has, and the per-connection steps in each shape a model can
# take: a loop that calls one step per event; a thread (or process) that serves one client
# from start to end; or callbacks of a library's own (asyncio.Protocol's), named by it.
SHARED_METHODS = {"listen", "serve", "stop_accepting", "close_all"}
LOOP_METHODS = {"accept_client", "read", "write", "close_client"}
PER_CLIENT_METHODS = {"accept_client", "serve_client", "close_client"}
SHAPES: tuple[set[str], ...] = (LOOP_METHODS, PER_CLIENT_METHODS, set())
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


def section_steps(text: str) -> list[str]:
    """The steps the banners name, top to bottom. A banner names one step ("# --- read ---")
    or two ("# --- read and write: ..."); the side-by-side view aligns servers on them."""
    banners = [banner.groups() for line in text.splitlines() if (banner := BANNER.match(line))]
    return [step for pair in banners for step in pair if step]


@pytest.mark.parametrize("model", registry.names())
def test_sections_in_the_shared_order(model: str) -> None:
    assert section_steps(source(model)) == STEPS


def test_a_moved_section_is_caught() -> None:
    """The check reads the order as written: listen and wait moved after close (where
    asyncio_io once had them) keep every banner, and still fail."""
    text = source("selectors_mux")
    listen, accept, stop = (text.index(f"    # --- {step} ") for step in ("listen", "accept", "stop"))
    moved = text[:listen] + text[accept:stop] + text[listen:accept] + text[stop:]
    assert sorted(section_steps(moved)) == sorted(STEPS)
    assert section_steps(moved) != STEPS


@pytest.mark.parametrize("model", registry.names())
def test_the_waits_are_marked(model: str) -> None:
    assert "# WAIT" in source(model), "the place the server blocks is marked '# WAIT'"


@pytest.mark.parametrize("model", registry.names())
def test_shared_names(model: str) -> None:
    tree = ast.parse(source(model))
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    methods = {item.name for item in classes["EchoServer"].body if isinstance(item, ast.FunctionDef)}
    methods |= {item.name for item in classes["EchoServer"].body if isinstance(item, ast.AsyncFunctionDef)}
    assert methods >= SHARED_METHODS
    assert methods & (LOOP_METHODS | PER_CLIENT_METHODS) in SHAPES, f"{model}: per-connection steps"
    assert any(isinstance(node, ast.FunctionDef) and node.name == "main" for node in tree.body)


def echo_server_methods(model: str) -> dict[str, ast.FunctionDef]:
    tree = ast.parse(source(model))
    [server] = [node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "EchoServer"]
    return {item.name: item for item in server.body if isinstance(item, ast.FunctionDef)}


@pytest.mark.parametrize("model", registry.names())
def test_read_only_reads(model: str) -> None:
    """read() reads and write() writes: the loop calls each, so a name never hides the other step."""
    if (read := echo_server_methods(model).get("read")) is None:
        return  # no read step of its own: a thread per client, or a library's callbacks
    calls = {
        node.func.attr
        for node in ast.walk(read)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    }
    assert "write" not in calls and "send" not in calls, f"{model}'s read() also writes"


@pytest.mark.parametrize("model", registry.names())
def test_close_client_has_one_signature(model: str) -> None:
    if (close_client := echo_server_methods(model).get("close_client")) is None:
        return  # a library's callbacks close the connection (asyncio: connection_lost)
    arguments = close_client.args
    assert [argument.arg for argument in arguments.args] == ["self", "client", "error"]
    assert len(arguments.defaults) == 1  # error=None: a close on purpose has no error


@pytest.mark.parametrize("model", registry.names())
def test_servers_import_only_the_standard_library_and_common(model: str) -> None:
    # A package the model declares it needs (gevent_io: gevent) is the one exception.
    needed = {need.what.split(".")[0] for need in registry.model(model).needs}
    for node in ast.walk(ast.parse(source(model))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            assert top in {*sys.stdlib_module_names, "common", model, *needed}, f"{model} imports {name}"


def test_common_does_no_server_io() -> None:
    for path in (ROOT / "common").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                assert node.func.attr not in SERVER_IO, f"{path.name} calls .{node.func.attr}()"


def test_ci_runs_the_readme_test_command() -> None:
    ci_command = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci_command == "./run-tests"
    assert f"\n{ci_command}\n" in (ROOT / "README.md").read_text()
