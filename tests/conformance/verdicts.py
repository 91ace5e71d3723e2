"""The verdicts: each pytest report of a conformance case becomes pass, fail, n/a or
deviation; the controller gathers them (xdist workers' reports come back to it),
writes the report and prints the summary."""

from __future__ import annotations

import platform
import shlex
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import settings

import toolkit.machine
from common import __version__
from tests.conformance import report as reports
from tests.conformance.cases import GROUPS, group_of
from tests.conformance.report import CaseEntry, Result, ServerEntry, Variant

CONFORMANCE = "conformance"  # the user property that marks a conformance case's item


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
        return "fail", message.splitlines()[0][:300] if message else "failed"
    return "pass", ""


class Collector:
    """Gathers every conformance case's outcome, then writes the report and prints the summary."""

    def __init__(self, config: pytest.Config, servers: list[ServerEntry]) -> None:
        self.config = config
        self.servers = servers
        self.started = time.monotonic()
        self.started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.cases: dict[str, CaseEntry] = {}
        self.variants: dict[tuple[str, str], dict[str, Variant]] = {}  # (case, server) -> by node id
        self.durations: dict[str, float] = {}  # node id -> seconds, over its phases
        self.written: list[Path] = []

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        info: dict[str, Any] | None = dict(report.user_properties).get(CONFORMANCE)  # type: ignore[assignment]
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
            {
                "name": info["variant"],
                "outcome": "n/a",
                "message": "",
                "details": "",
                "measured": [],
                "figures": {},
            },
        )
        self.durations[report.nodeid] = self.durations.get(report.nodeid, 0.0) + report.duration
        # Figures a case measured on the way (record_property("measured", ...)).
        where = f"[{info['variant']}] " if info["variant"] else ""  # "[ipv6] ...": which run measured it
        measured = [value for name, value in report.user_properties if name == "measured"]
        variant["measured"] += [f"{where}{value}" for value in measured]
        for name, value in report.user_properties:
            if name == "figure":  # (NAME, number): record_property("figure", (C10K_RSS, 0.5))
                figure, number = cast(tuple[str, float], value)  # user_properties hold objects
                variant["figures"][figure] = number
        # The first phase to fail names the failure: a teardown check that fails after
        # the case did would only repeat it less clearly.
        if severity(verdict) > severity(variant["outcome"]) or not variant["message"]:
            variant["outcome"], variant["message"] = verdict, message
            if verdict == "fail":
                variant["details"] = report.longreprtext

    def results(self) -> list[Result]:
        results: list[Result] = []
        for (case_id, server_name), by_item in self.variants.items():
            variants = list(by_item.values())
            worst = max(variants, key=lambda variant: severity(variant["outcome"]))
            results.append(
                {
                    "case": case_id,
                    "server": server_name,
                    "verdict": worst["outcome"],
                    "reason": worst["message"],
                    "duration": round(sum(self.durations[node] for node in by_item), 3),
                    "variants": variants,
                }
            )
        return results

    def report(self) -> reports.Report:
        return {
            "schema": reports.SCHEMA,
            "suite": "io-models conformance",
            "version": __version__,
            "started": self.started_at,
            "machine": {**toolkit.machine.describe(), "implementation": platform.python_implementation()},
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
            "servers": self.servers,
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
        results = sorted(self.results(), key=lambda result: reports.case_sort_key(result["case"]))
        counts = {verdict: 0 for verdict in reports.VERDICTS}
        for result in results:
            counts[result["verdict"]] += 1
        tally = ", ".join(f"{count} {verdict}" for verdict, count in counts.items() if count)
        servers = {server for _, server in self.variants}
        terminalreporter.write_sep("-", "conformance")
        terminalreporter.write_line(f"{len(self.cases)} cases x {len(servers)} servers: {tally}")
        for result in results:
            if result["verdict"] == "fail":
                terminalreporter.write_line(
                    f"  {result['case']} {result['server']}: fail: {result['reason']}"
                )
        for result in results:
            for variant in result["variants"]:
                for figure in variant["measured"]:
                    terminalreporter.write_line(f"  {result['case']} {result['server']}: measured: {figure}")
        for path in self.written:
            terminalreporter.write_line(f"report: {path}")
