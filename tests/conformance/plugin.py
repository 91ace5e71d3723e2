"""The conformance suite as a pytest plugin: which servers it runs against, which cases
apply to each, the fixtures that start them, and the report of verdicts.

    pytest tests/conformance                             every model in toolkit.registry
    pytest tests/conformance --models broken/upper       a deliberately broken server
    pytest tests/conformance --server-cmd "CMD {port}"   any server the suite starts
    pytest tests/conformance --target 127.0.0.1:7        a server already running
    ... --cases 1,4.2 --report reports/                  some cases; write the report

Verdicts: pass; fail; not applicable (the case needs what this server cannot give,
e.g. a process to measure, or the model needs what this machine lacks, as its
declaration's probe says: the reason is the line the model exits with); deviation
(the server declares, with a reason, that it does not meet the case: that excuses the
case's own assertion, nothing else, and strictly, so a deviation that starts passing
fails).
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from common.lifecycle import host_and_port
from tests.conformance.cases import Needs, all_cases, group_of
from tests.conformance.report import ServerEntry
from tests.conformance.verdicts import CONFORMANCE, Collector
from tests.servers import (
    BROKEN_PREFIX,
    RunningElsewhere,
    Server,
    StartServer,
    broken_script,
    ipv6_loopback_available,
    spec_for,
)
from toolkit import registry
from toolkit.process import PORT, ServerProcess, ServerSpec

SERVERS = pytest.StashKey[list[ServerSpec]]()
IPV6 = "ipv6"
MAX_IPV6_GROUP = 6  # groups 7-10 are about the command line and the process, not the family
# One case or two from each of groups 1-6, a few seconds a server: the default run's IPv6.
IPV6_SAMPLE = frozenset({"1.1", "1.4", "2.1", "2.4", "3.1", "3.5", "4.1", "4.6", "5.2", "6.2"})
DEVIATION = pytest.StashKey[str]()  # on an item whose case the server declares it deviates from
SOAK_CYCLES = 10_000  # in the default run; tox -e soak runs ten times as many

NOT_APPLICABLE = {
    Needs.PROCESS: "not applicable: needs the server's process (run it with --server-cmd, not --target)",
    Needs.LIFECYCLE: "not applicable: the server does not declare io-models' command line (--lifecycle)",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance", "echo server conformance")
    group.addoption(
        "--models",
        help="comma-separated servers to test: model packages, or broken/<name> from tests/broken "
        "(default: every model in the registry, unless --server-cmd or --target is given)",
    )
    group.addoption(
        "--server-cmd",
        help=f"test a server the suite starts: a command with {PORT} where the port goes, run "
        "without a shell (the suite signals and measures the process it starts); for shell syntax, "
        f"wrap it: \"sh -c 'cd DIR && exec ./server {PORT}'\"",
    )
    group.addoption("--target", help="test a server already running at HOST:PORT (groups 1-4 only)")
    group.addoption("--server-name", help="the name of the --server-cmd or --target server in the report")
    group.addoption(
        "--lifecycle",
        action="store_true",
        help="the --server-cmd server follows io-models' command line: run groups 7, 8 and 10 against it too",
    )
    group.addoption(
        "--deviation",
        action="append",
        default=[],
        metavar="CASE=REASON",
        help="declare that the server under test deviates from a case, and why (repeatable)",
    )
    group.addoption(
        "--ipv6",
        action="store_true",
        help="run all of groups 1-6 over IPv6 too (servers started with --host ::1); "
        f"by default only {', '.join(sorted(IPV6_SAMPLE))} are",
    )
    group.addoption("--cases", help="comma-separated groups (3) and cases (4.2) to run (default: all)")
    group.addoption("--report", type=Path, metavar="DIR", help="write conformance.{json,html,md} to DIR")
    group.addoption(
        "--soak-cycles",
        type=int,
        default=SOAK_CYCLES,
        metavar="N",
        help="connect/echo/close cycles in the soak, case 10.2 (tox -e soak runs 100,000)",
    )


def parse_deviations(declared: list[str]) -> dict[str, str]:
    deviations = {}
    for declaration in declared:
        case_id, separator, reason = declaration.partition("=")
        if not separator or not reason.strip():
            raise pytest.UsageError(f"--deviation {declaration!r}: expected CASE=REASON")
        if case_id.strip() not in all_cases():  # a typo would otherwise excuse nothing, silently
            raise pytest.UsageError(f"--deviation {declaration!r}: no case {case_id.strip()!r}")
        deviations[case_id.strip()] = reason.strip()
    return deviations


SHELL_OPERATORS = frozenset({"&&", "||", ";", "|", "&", "<", ">", ">>", "(", ")"})


def parse_server_cmd(command: str) -> tuple[str, ...]:
    """The argv of --server-cmd. No shell runs it: the suite signals and measures the
    process it starts, which must be the server itself, not a shell waiting on it."""
    if PORT not in command:
        raise pytest.UsageError(f"--server-cmd: put {PORT} where the port goes")
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    if operators := SHELL_OPERATORS.intersection(lexer):
        raise pytest.UsageError(
            f"--server-cmd runs no shell, so {' '.join(sorted(operators))} would reach the server as "
            f"arguments; wrap it, with exec so the signals reach the server: "
            f"--server-cmd \"sh -c 'cd DIR && exec ./server {PORT}'\""
        )
    return tuple(shlex.split(command))


def parse_target(text: str) -> tuple[str, int]:
    host, separator, port = text.rpartition(":")
    if not separator or not port.isdigit():
        raise pytest.UsageError(f"--target {text!r}: expected HOST:PORT")
    return host.strip("[]"), int(port)


def servers_under_test(config: pytest.Config) -> list[ServerSpec]:
    option = config.getoption
    deviations = parse_deviations(option("--deviation"))
    servers = []
    if command := option("--server-cmd"):
        argv = parse_server_cmd(command)
        name = option("--server-name") or "server-cmd"
        servers.append(ServerSpec(name, argv, lifecycle=option("--lifecycle"), deviations=deviations))
    if target := option("--target"):
        name = option("--server-name") or target
        servers.append(ServerSpec(name, target=parse_target(target), deviations=deviations))
    models = option("--models") or ("" if servers else ",".join(registry.names()))
    for name in filter(None, (name.strip() for name in models.split(","))):
        # A selected server that cannot run must stop the whole run, loudly, before any
        # test: skipping it would report a green suite for a model nobody tested.
        if name.startswith(BROKEN_PREFIX):
            if not broken_script(name).is_file():
                raise pytest.UsageError(f"--models: no broken server {broken_script(name)}")
        elif name not in registry.names():
            raise pytest.UsageError(
                f"--models: unknown server {name!r}; the models are {', '.join(registry.names())}"
            )
        spec = spec_for(name)  # a model's own deviations come from its declaration
        servers.append(dataclasses.replace(spec, deviations={**spec.deviations, **deviations}))
    return servers


def capabilities(spec: ServerSpec) -> list[Needs]:
    offered = [Needs.ADDRESS]
    if spec.command is not None:
        offered.append(Needs.PROCESS)
        if spec.lifecycle:
            offered.append(Needs.LIFECYCLE)
    return offered


def runs_over_ipv6(spec: ServerSpec, case_id: str, config: pytest.Config) -> bool:
    """Whether a case runs on this spec, as far as IPv6 goes: everywhere on IPv4; on the
    ::1 variant, groups 1-6 with --ipv6, and a cheap sample of them by default."""
    if spec.variant != IPV6:
        return True
    if group_of(case_id).number > MAX_IPV6_GROUP:
        return False
    return config.getoption("--ipv6") or case_id in IPV6_SAMPLE


def server_entry(spec: ServerSpec) -> ServerEntry:
    """How the report names a server, says how it was reached, and what it offers."""
    return {
        "name": spec.name,
        "command": spec.shown_command(),
        "address": None if spec.target is None else host_and_port(*spec.target),
        "capabilities": [need.value for need in capabilities(spec)],
        "deviations": dict(spec.deviations),
    }


def selected(case_id: str, wanted: str | None) -> bool:
    if not wanted:
        return True
    choices = {choice.strip() for choice in wanted.split(",")}
    return case_id in choices or case_id.split(".", maxsplit=1)[0] in choices


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "case(id, title, timeout): a numbered conformance case")
    config.stash[SERVERS] = servers_under_test(config)
    if not hasattr(config, "workerinput"):  # the controller (or a run without xdist) reports
        entries = [server_entry(spec) for spec in config.stash[SERVERS]]
        config.pluginmanager.register(Collector(config, entries), "conformance-collector")


def with_ipv6_variants(servers: list[ServerSpec]) -> list[ServerSpec]:
    """Each server, then, for one that takes io-models' --host, the same on ::1. Not the
    broken servers: each is there for its one defect, which no address family changes."""
    if not ipv6_loopback_available():
        return servers
    variants = [
        dataclasses.replace(spec, variant=IPV6, extra_args=("--host", "::1"))
        for spec in servers
        if spec.lifecycle and not spec.unavailable and not spec.name.startswith(BROKEN_PREFIX)
    ]
    return servers + variants


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "server_spec" in metafunc.fixturenames:
        servers = with_ipv6_variants(metafunc.config.stash[SERVERS])
        # Module scope: the module-scoped `server` fixture then starts one process per
        # server per test module, not one per test.
        ids = [f"{spec.name}-{spec.variant}" if spec.variant else spec.name for spec in servers]
        metafunc.parametrize("server_spec", servers, ids=ids, scope="module")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    kept, deselected = [], []
    seen: dict[str, str] = {}
    for item in items:
        callspec = getattr(item, "callspec", None)  # only parametrized tests have one
        spec = callspec.params.get("server_spec") if callspec else None
        if not isinstance(item, pytest.Function) or not isinstance(spec, ServerSpec):
            kept.append(item)
            continue
        mark = item.get_closest_marker("case")
        if mark is None:
            raise pytest.UsageError(f"{item.nodeid}: a conformance test needs @case(id, title, timeout=...)")
        case_id = mark.kwargs["id"]
        function = f"{item.module.__name__}.{item.originalname}"
        if seen.setdefault(case_id, function) != function:
            raise pytest.UsageError(f"case {case_id} is both {seen[case_id]} and {function}")
        if not selected(case_id, config.getoption("--cases")) or not runs_over_ipv6(spec, case_id, config):
            deselected.append(item)
            continue
        kept.append(item)
        needs = group_of(case_id).needs
        if spec.unavailable:
            item.add_marker(pytest.mark.skip(reason=f"not applicable: {spec.unavailable}"))
        elif needs not in capabilities(spec):
            item.add_marker(pytest.mark.skip(reason=NOT_APPLICABLE[needs]))
        elif case_id in spec.deviations:
            item.stash[DEVIATION] = spec.deviations[case_id]
        variant = item.callspec.id.replace(spec.name, "", 1).strip("-")  # "ipv6-nul": family, parameter
        item.user_properties.append((CONFORMANCE, {**mark.kwargs, "server": spec.name, "variant": variant}))
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A declared deviation excuses the case's own assertion and nothing else: a setup
    error, a timeout or a server that never got ready stays a fail. And strictly: a
    case that passes despite its declaration fails, so declarations cannot go stale."""
    report = yield
    reason = item.stash.get(DEVIATION, None)
    if reason is None or call.when != "call":
        return report
    if report.failed and call.excinfo is not None and isinstance(call.excinfo.value, AssertionError):
        report.outcome = "skipped"
        report.wasxfail = reason  # how pytest marks an xfail
    elif report.passed:
        report.outcome = "failed"
        report.longrepr = f"declared a deviation ({reason}), but the case passes"
    return report


# --- fixtures -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(server_spec: ServerSpec) -> Iterator[Server]:
    """One running server shared by a module's tests: for tests that only need an address."""
    if server_spec.target is not None:
        yield RunningElsewhere(server_spec.target)
        return
    with ServerProcess(server_spec) as process:
        yield process


@pytest.fixture(scope="module")
def server_process(server: Server) -> ServerProcess:
    """The shared server, for cases that measure its process (groups 5 and 6)."""
    assert isinstance(server, ServerProcess), "groups 5-6 need a server the suite started"
    return server


@pytest.fixture(autouse=True)
def server_unharmed(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each case, the shared server must still run, with no traceback written
    meanwhile: a crash or an unhandled error fails the case that caused it, even one
    whose client saw nothing wrong."""
    if "server" not in request.fixturenames:
        yield
        return
    server = request.getfixturevalue("server")
    if not isinstance(server, ServerProcess):  # a --target: nothing to look at
        yield
        return
    written, was_running = len(server.stderr_text()), server.running()
    yield
    assert_unharmed(server, since=written)
    assert server.running() or not was_running, (
        f"the server exited with {server.process.returncode} during this case; stderr:\n"
        f"{server.stderr_text()[written:][-2000:]}"
    )


@pytest.fixture
def soak_cycles(request: pytest.FixtureRequest) -> int:
    cycles: int = request.config.getoption("--soak-cycles")
    return cycles


@pytest.fixture
def start_server(server_spec: ServerSpec) -> Iterator[StartServer]:
    """Start a fresh server with extra arguments, for tests that signal, stop or kill it."""
    started: list[ServerProcess] = []

    def start(*extra_args: str) -> ServerProcess:
        process = ServerProcess(server_spec, *extra_args)
        started.append(process)
        return process

    yield start
    for process in started:
        # The test has signalled it as it meant to; a server that is still running now
        # (it ignored the signal, or waits on a client) has had its chance.
        process.close(grace=1.0)
    for process in started:
        assert_unharmed(process)


def assert_unharmed(server: ServerProcess, since: int = 0) -> None:
    """No traceback in what the server wrote to stderr since that offset."""
    written = server.stderr_text()[since:]
    assert "Traceback" not in written, f"the server wrote a traceback:\n{written[-3000:]}"
