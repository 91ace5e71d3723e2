"""Which servers the suite runs against, and the fixtures that start them.

Every test that asks for `server`, `start_server` or `server_command` runs once per
selected server. `--models` picks them (default: the six models); a deliberately
broken server from tests/broken/ is selected as `broken/<name>`, to check that the
suite catches its defect.
"""

from __future__ import annotations

import importlib.util
import select
from collections.abc import Iterator

import pytest

from tests.support import BROKEN_PREFIX, MODELS, ServerProcess, StartServer, broken_script, command_for


def selected_servers(config: pytest.Config) -> list[str]:
    return [name.strip() for name in str(config.getoption("--models")).split(",") if name.strip()]


def pytest_configure(config: pytest.Config) -> None:
    # A selected server that cannot run must stop the whole run, loudly, before any test:
    # skipping it would report a green suite for a model nobody tested.
    for name in selected_servers(config):
        if name.startswith(BROKEN_PREFIX):
            if not broken_script(name).is_file():
                raise pytest.UsageError(f"--models: no broken server {broken_script(name)}")
        elif name not in MODELS:
            raise pytest.UsageError(f"--models: unknown server {name!r}; the models are {', '.join(MODELS)}")
        elif importlib.util.find_spec(f"{name}.server") is None:
            raise pytest.UsageError(f"--models: model {name} has no {name}/server.py yet")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "server_name" not in metafunc.fixturenames:
        return
    params = [
        pytest.param(
            name,
            id=name,
            marks=pytest.mark.skipif(
                name == "epoll_mux" and not hasattr(select, "epoll"), reason="select.epoll is Linux-only"
            ),
        )
        for name in selected_servers(metafunc.config)
    ]
    # Module scope: the module-scoped `server` fixture then starts one process per
    # server per test module, not one per test.
    metafunc.parametrize("server_name", params, scope="module")


@pytest.fixture(scope="module")
def server_command(server_name: str) -> list[str]:
    """The argv prefix that runs the server under test."""
    return command_for(server_name)


@pytest.fixture(scope="module")
def server(server_command: list[str]) -> Iterator[ServerProcess]:
    """One running server shared by a module's tests: for tests that only need an address."""
    with ServerProcess(server_command) as process:
        yield process


@pytest.fixture
def start_server(server_command: list[str]) -> Iterator[StartServer]:
    """Start a fresh server with extra arguments, for tests that signal, stop or kill it."""
    started: list[ServerProcess] = []

    def start(*extra_args: str) -> ServerProcess:
        process = ServerProcess(server_command, *extra_args)
        started.append(process)
        return process

    yield start
    for process in started:
        process.close()
