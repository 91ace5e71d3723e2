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
(the server declares, with a reason, that it does not meet the case: xfail, strict,
so a deviation that starts passing fails).
"""

from __future__ import annotations

import dataclasses
import os
import platform
import shlex
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from common import __version__
from tests.conformance import report as reports
from tests.conformance.cases import GROUPS, Needs, group_of
from tests.servers import BROKEN_PREFIX, RunningElsewhere, Server, StartServer, broken_script, spec_for
from toolkit import registry
from toolkit.process import PORT, ServerProcess, ServerSpec

SERVERS = pytest.StashKey[list[ServerSpec]]()
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
        help=f"test a server the suite starts: a command with {PORT} where the port goes",
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
        deviations[case_id.strip()] = reason.strip()
    return deviations


def parse_target(text: str) -> tuple[str, int]:
    host, separator, port = text.rpartition(":")
    if not separator or not port.isdigit():
        raise pytest.UsageError(f"--target {text!r}: expected HOST:PORT")
    return host.strip("[]"), int(port)


def shown_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def servers_under_test(config: pytest.Config) -> list[ServerSpec]:
    option = config.getoption
    deviations = parse_deviations(option("--deviation"))
    servers = []
    if command := option("--server-cmd"):
        if PORT not in command:
            raise pytest.UsageError(f"--server-cmd: put {PORT} where the port goes")
        name = option("--server-name") or "server-cmd"
        servers.append(
            ServerSpec(
                name, tuple(shlex.split(command)), lifecycle=option("--lifecycle"), deviations=deviations
            )
        )
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


def selected(case_id: str, wanted: str | None) -> bool:
    if not wanted:
        return True
    choices = {choice.strip() for choice in wanted.split(",")}
    return case_id in choices or case_id.split(".", maxsplit=1)[0] in choices


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "case(id, title, timeout): a numbered conformance case")
    config.stash[SERVERS] = servers_under_test(config)
    if not hasattr(config, "workerinput"):  # the controller (or a run without xdist) reports
        config.pluginmanager.register(Collector(config), "conformance-collector")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "server_spec" in metafunc.fixturenames:
        servers = metafunc.config.stash[SERVERS]
        # Module scope: the module-scoped `server` fixture then starts one process per
        # server per test module, not one per test.
        metafunc.parametrize("server_spec", servers, ids=[spec.name for spec in servers], scope="module")


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
        if not selected(case_id, config.getoption("--cases")):
            deselected.append(item)
            continue
        kept.append(item)
        needs = group_of(case_id).needs
        if spec.unavailable:
            item.add_marker(pytest.mark.skip(reason=f"not applicable: {spec.unavailable}"))
        elif needs not in capabilities(spec):
            item.add_marker(pytest.mark.skip(reason=NOT_APPLICABLE[needs]))
        elif case_id in spec.deviations:
            item.add_marker(pytest.mark.xfail(reason=spec.deviations[case_id], strict=True))
        variant = item.callspec.id.replace(spec.name, "", 1).strip("-")
        item.user_properties.append(("conformance", {**mark.kwargs, "server": spec.name, "variant": variant}))
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept


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


# --- verdicts and the report --------------------------------------------------------


def severity(verdict: str) -> int:
    """Higher is worse: a case's verdict is its worst item's, an item's its worst phase's."""
    return -reports.SEVERITY.index(verdict)


def outcome_of(report: pytest.TestReport) -> tuple[str, str]:
    """One phase of one test as a verdict, with the reason or the one-line message."""
    if report.skipped:
        if hasattr(report, "wasxfail"):
            return "deviation", str(report.wasxfail)
        assert isinstance(report.longrepr, tuple)
        return "n/a", str(report.longrepr[2]).removeprefix("Skipped: ")
    if report.failed:
        crash = getattr(report.longrepr, "reprcrash", None)
        message = str(getattr(crash, "message", "") or report.longreprtext).strip()
        if "XPASS(strict)" in message:
            message = f"declared a deviation ({message.split('] ', 1)[-1]}), but the case passes"
        return "fail", message.splitlines()[0][:300] if message else "failed"
    return "pass", ""


class Collector:
    """Gathers every conformance case's outcome (from all xdist workers: their reports
    come back to the controller), then writes the report and prints the summary."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.started = time.monotonic()
        self.cases: dict[str, dict[str, Any]] = {}
        self.variants: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        self.written: list[Path] = []

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        info: dict[str, Any] | None = dict(report.user_properties).get("conformance")  # type: ignore[assignment]
        if info is None or (report.when != "call" and report.passed):
            return
        case_id = info["id"]
        self.cases[case_id] = {
            "id": case_id,
            "group": group_of(case_id).number,
            "title": info["title"],
            "timeout": info["timeout"],
        }
        verdict, message = outcome_of(report)
        variant = self.variants.setdefault((case_id, info["server"]), {}).setdefault(
            report.nodeid,
            {"name": info["variant"], "outcome": "n/a", "message": "", "details": "", "duration": 0.0},
        )
        variant["duration"] += report.duration
        # Figures a case measured on the way (record_property("measured", ...)).
        variant.setdefault("measured", []).extend(
            value for name, value in report.user_properties if name == "measured"
        )
        if severity(verdict) >= severity(variant["outcome"]):
            variant.update(outcome=verdict, message=message)
            if verdict == "fail":
                variant["details"] = report.longreprtext

    def results(self) -> list[dict[str, Any]]:
        results = []
        for (case_id, server_name), by_item in self.variants.items():
            variants = list(by_item.values())
            worst = max(variants, key=lambda variant: severity(variant["outcome"]))
            results.append(
                {
                    "case": case_id,
                    "server": server_name,
                    "verdict": worst["outcome"],
                    "reason": worst["message"],
                    "duration": round(sum(variant["duration"] for variant in variants), 3),
                    "variants": [
                        {key: value for key, value in variant.items() if key != "duration"}
                        for variant in variants
                    ],
                }
            )
        return results

    def report(self) -> reports.Report:
        servers = self.config.stash[SERVERS]
        return {
            "schema": 1,
            "suite": "io-models conformance",
            "version": __version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": {
                "python": platform.python_version(),
                "implementation": platform.python_implementation(),
                "platform": platform.platform(),
                "cpus": os.cpu_count(),
            },
            "hypothesis_profile": settings.get_current_profile_name(),
            "command": shlex.join(["pytest", *self.config.invocation_params.args]),
            "duration_seconds": round(time.monotonic() - self.started, 1),
            "groups": [
                {
                    "number": group.number,
                    "title": group.title,
                    "needs": group.needs.value,
                    "summary": group.summary,
                }
                for group in GROUPS.values()
            ],
            "cases": sorted(self.cases.values(), key=lambda case: reports.case_sort_key(case["id"])),
            "servers": [
                {
                    "name": spec.name,
                    "command": spec.shown_command(),
                    "address": None if spec.target is None else shown_address(*spec.target),
                    "capabilities": [need.value for need in capabilities(spec)],
                    "deviations": dict(spec.deviations),
                }
                for spec in servers
            ],
            "results": self.results(),
        }

    @pytest.hookimpl(tryfirst=True)  # before the terminal summary, which names the files
    def pytest_sessionfinish(self) -> None:
        directory = self.config.getoption("--report")
        if directory and self.variants:
            self.written = reports.write_report(self.report(), directory)

    @pytest.hookimpl
    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.variants:
            return
        results = self.results()
        counts = {verdict: 0 for verdict in reports.VERDICTS}
        for result in results:
            counts[result["verdict"]] += 1
        tally = ", ".join(f"{count} {verdict}" for verdict, count in counts.items() if count)
        servers = {server for _, server in self.variants}
        terminalreporter.write_sep("-", "conformance")
        terminalreporter.write_line(f"{len(self.cases)} cases x {len(servers)} servers: {tally}")
        for result in sorted(results, key=lambda result: reports.case_sort_key(result["case"])):
            if result["verdict"] == "fail":
                terminalreporter.write_line(
                    f"  {result['case']} {result['server']}: fail: {result['reason']}"
                )
        for result in sorted(results, key=lambda result: reports.case_sort_key(result["case"])):
            for variant in result["variants"]:
                for figure in variant.get("measured", []):
                    terminalreporter.write_line(f"  {result['case']} {result['server']}: measured: {figure}")
        for path in self.written:
            terminalreporter.write_line(f"report: {path}")
