"""The conformance suite can fail, and says where: each deliberately broken server in
tests/broken is flagged in the group its defect belongs to. And the verdicts mean what
they say: a server the suite starts with --server-cmd, one already running (--target)
and a declared deviation each get the verdicts promised for them.

Each test runs the suite in a subprocess, as a user would, and reads its JSON report.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conformance.report import Report, case_sort_key, load
from toolkit.process import ServerProcess, ServerSpec
from toolkit.registry import ROOT

# Each broken server's defect, and the group (or, for a costly group, the case) that
# must catch it; or, for a model's own failure mode, the test of tests/test_<model>.py
# that must (it runs against the server that --models names).
CAUGHT_IN: dict[str, str] = {
    "upper": "1",  # transforms the data
    "partial_send": "1",  # ignores what send() returns
    "until_eof": "2",  # echoes nothing until the client's EOF
    "one_at_a_time": "3",  # serves one client at a time
    "no_flush_on_half_close": "4",  # closes before flushing on half-close
    "never_closes": "4",  # never closes after the half-close
    "crash_on_reset": "4",  # dies of a client's reset
    "unbounded": "5",  # buffers without limit
    "leaks_sockets": "6",  # never closes the socket (after sending its FIN)
    "ignores_sigterm": "7",  # a stop signal changes nothing
    "hand_rolled_cli": "7",  # options from sys.argv, a bare bind(): tracebacks, no --help
    "unlimited": "8",  # ignores --max-connections
    "drains_forever": "8.3",  # waits for every client at a stop, however long
    "select_past_fd_setsize": "8.4",  # hands select() a descriptor >= 1024
    "spins_at_emfile": "9.1",  # retries accept() at once when out of descriptors
    "eintr_fatal": "9.5",  # takes an interrupted recv() (EINTR) for a dead connection
    "ipv6_only": "7.11",  # --host :: serves IPv6 clients only (IPV6_V6ONLY)
    "listen_tracebacks": "7.7",  # a busy port or a bad host name is a traceback
    "batch_is_backlog": "7.12,9.1",  # --backlog as the accept batch: 0 never accepts, 65535 spins
    "blind_idle_timer": "8.5",  # counts only its own sends as progress: a slow reader is "idle"
    "log_per_spell": "8.6",  # a line per spell at --max-connections: one per refusal as clients churn
    "dies_without_threads": "9.7",  # a thread that cannot start ends the whole server
    "never_replaces_workers": "tests/test_prefork.py::test_a_killed_worker_is_replaced",
    "kills_workers_at_stop": "tests/test_prefork.py::test_a_stop_drains_every_worker",
    "orphans_workers": "tests/test_prefork.py::test_no_worker_outlives_its_master",
    "greenlet_never_yields": "tests/test_gevent_io.py::test_a_fast_stream_does_not_stall_the_others",
    "imports_gevent_first": "tests/test_gevent_io.py::test_without_gevent_one_line_and_n_a",
}
FIVE_LINER = ("python", "tests/third_party/socketserver_echo.py", "{port}")
# One cheap case from each group: enough to show which verdict each group gets.
ONE_PER_GROUP = "1.1,2.2,3.2,4.2,5.2,6.3,7.9"


def run_suite(report_directory: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], Report]:
    command = [sys.executable, "-m", "pytest", "tests/conformance", "-p", "no:cacheprovider", "-q"]
    result = subprocess.run(
        [*command, "--report", str(report_directory), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert (report_directory / "conformance.json").is_file(), result.stdout + result.stderr
    return result, load(report_directory / "conformance.json")


def verdicts(report: Report) -> dict[str, str]:
    return {result["case"]: result["verdict"] for result in report["results"]}


def test_every_broken_server_has_a_group() -> None:
    scripts = {path.stem for path in (ROOT / "tests" / "broken").glob("*.py")}
    assert scripts - {"__init__", "harness"} == set(CAUGHT_IN)


@pytest.mark.timeout(600)
@pytest.mark.parametrize(("broken", "group"), CAUGHT_IN.items(), ids=list(CAUGHT_IN))
def test_broken_server_fails_in_its_group(tmp_path: Path, broken: str, group: str) -> None:
    if group.startswith("tests/"):
        return fails_a_model_test(broken, group)
    result, report = run_suite(tmp_path, "--models", f"broken/{broken}", "--cases", group)
    caught = sorted(
        (case for case, verdict in verdicts(report).items() if verdict == "fail"), key=case_sort_key
    )
    assert caught, f"no case of group {group} fails broken/{broken}:\n{result.stdout[-3000:]}"
    assert result.returncode == 1
    print(f"broken/{broken}: caught by {', '.join(caught)}")


def fails_a_model_test(broken: str, test: str) -> None:
    command = [sys.executable, "-m", "pytest", test, "-p", "no:cacheprovider", "-p", "no:xdist", "-q"]
    result = subprocess.run(
        [*command, "--models", f"broken/{broken}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, (
        f"{test} passes broken/{broken}:\n{result.stdout[-3000:]}"
    )
    print(f"broken/{broken}: caught by {test}")


@pytest.mark.timeout(300)
def test_server_cmd_runs_groups_1_to_6_and_7_only_when_declared(tmp_path: Path) -> None:
    command = " ".join(part.replace("python", sys.executable) for part in FIVE_LINER)
    result, report = run_suite(
        tmp_path, "--server-cmd", command, "--server-name", "socketserver", "--cases", ONE_PER_GROUP
    )
    assert result.returncode == 0, result.stdout
    assert verdicts(report) == {case: "pass" for case in ONE_PER_GROUP.split(",")} | {"7.9": "n/a"}
    [server] = report["servers"]
    assert server["capabilities"] == ["address", "process"]


@pytest.mark.timeout(300)
def test_target_runs_groups_1_to_4_only(tmp_path: Path) -> None:
    spec = ServerSpec("socketserver", (sys.executable, *FIVE_LINER[1:]))
    with ServerProcess(spec) as running:
        host, port = running.address
        result, report = run_suite(tmp_path, "--target", f"{host}:{port}", "--cases", ONE_PER_GROUP)
    assert result.returncode == 0, result.stdout
    expected = {
        "1.1": "pass",
        "2.2": "pass",
        "3.2": "pass",
        "4.2": "pass",
        "5.2": "n/a",
        "6.3": "n/a",
        "7.9": "n/a",
    }
    assert verdicts(report) == expected
    not_applicable = {result["reason"] for result in report["results"] if result["verdict"] == "n/a"}
    assert all(reason.startswith("not applicable") for reason in not_applicable), not_applicable


@pytest.mark.timeout(300)
def test_declared_deviation_is_shown_as_such_never_as_pass(tmp_path: Path) -> None:
    result, report = run_suite(
        tmp_path,
        "--models",
        "broken/upper",
        "--cases",
        "1.1,4.2",
        "--deviation",
        "1.1=upper-cases letters by design",
        "--deviation",
        "4.2=a deviation it does not need",
    )
    [deviation] = [result for result in report["results"] if result["case"] == "1.1"]
    assert deviation["verdict"] == "deviation"
    assert deviation["reason"] == "upper-cases letters by design"
    # A declared deviation that the server does not need is a stale declaration: a fail.
    [stale] = [result for result in report["results"] if result["case"] == "4.2"]
    assert stale["verdict"] == "fail"
    assert "but the case passes" in stale["reason"]
    assert result.returncode == 1


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("arguments", "complaint"),
    [
        (["--server-cmd", "socat TCP-LISTEN:7,fork PIPE"], "put {port} where the port goes"),
        (["--target", "localhost"], "expected HOST:PORT"),
        (["--deviation", "1.1"], "expected CASE=REASON"),
        (["--models", "no_such_model"], "unknown server 'no_such_model'"),
    ],
    ids=["server-cmd-without-port", "target-without-port", "deviation-without-reason", "unknown-model"],
)
def test_bad_options_stop_the_run_before_any_test(arguments: list[str], complaint: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/conformance", "-p", "no:cacheprovider", *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout + result.stderr
    assert complaint in result.stderr
