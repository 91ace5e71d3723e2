"""The conformance suite can fail, and says where: each deliberately broken server in
tests/broken names the cases that must catch it (CAUGHT_BY), and each of them fails it;
the harness they share, with no defect, passes (the positive control). And the verdicts
mean what they say: a server the suite starts with --server-cmd, one already running (--target)
and a declared deviation each get the verdicts promised for them.

Each test runs the suite in a subprocess, as a user would, and reads its JSON report.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conformance.cases import all_cases
from tests.conformance.report import Report, load
from tests.servers import spec_for
from toolkit import registry
from toolkit.process import ServerProcess, ServerSpec
from toolkit.registry import ROOT

BROKEN = ROOT / "tests" / "broken"
NOT_BROKEN = {"__init__", "harness"}  # the package, and the harness: the positive control
# What the harness, with no defect, cannot pass by its plain design, a thread per client
# in recv() or sendall(): 8.5, its idle timeout is the socket's, blind to the kernel's
# send queue draining into a slow reader (the models look at SIOCOUTQ); 8.8, at a stall
# it holds one read, not up to --buffer-size. Group 10 is left out for time: 10.1 passes,
# but the threading module's 10,000 threads take it 26 s (blocking, with _thread: 4 s).
CONTROL_CANNOT = {"8.5", "8.8"}
CONTROL_CASES = "1,2,3,4,5,6,7,8,9"


def caught_by(broken: str) -> tuple[str, ...]:
    """The CAUGHT_BY constant of tests/broken/<broken>.py, read without running it (an
    import would start the server)."""
    tree = ast.parse((BROKEN / f"{broken}.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and [getattr(target, "id", "") for target in node.targets] == [
            "CAUGHT_BY"
        ]:
            value = ast.literal_eval(node.value)
            assert isinstance(value, tuple) and value, f"broken/{broken}: CAUGHT_BY must name cases"
            return value
    raise AssertionError(f"broken/{broken} does not say which cases must catch it (CAUGHT_BY)")


BROKEN_SERVERS = sorted(path.stem for path in BROKEN.glob("*.py") if path.stem not in NOT_BROKEN)
# A model's own failure modes are caught by its own test file, which runs each check
# against the broken server made for it: such a server names that file, not a case.
OWN_TESTS = "tests/"


def named_cases(broken: str) -> list[str]:
    return [entry for entry in caught_by(broken) if not entry.startswith(OWN_TESTS)]


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


def test_every_broken_server_names_existing_cases() -> None:
    known = all_cases()
    for broken in BROKEN_SERVERS:
        assert set(named_cases(broken)) <= set(known), f"broken/{broken} names cases that do not exist"
        for test_file in set(caught_by(broken)) - set(named_cases(broken)):
            text = (ROOT / test_file).read_text(encoding="utf-8")
            assert f'"{broken}"' in text, f"{test_file} never runs broken/{broken}"


@pytest.mark.timeout(600)
@pytest.mark.parametrize("broken", [broken for broken in BROKEN_SERVERS if named_cases(broken)])
def test_broken_server_fails_the_cases_it_names(tmp_path: Path, broken: str) -> None:
    cases = named_cases(broken)
    result, report = run_suite(tmp_path, "--models", f"broken/{broken}", "--cases", ",".join(cases))
    missed = [case for case in cases if verdicts(report).get(case) != "fail"]
    assert not missed, f"broken/{broken} passes {', '.join(missed)}:\n{result.stdout[-3000:]}"
    assert result.returncode == 1


@pytest.mark.timeout(600)
def test_the_harness_without_a_defect_passes(tmp_path: Path) -> None:
    result, report = run_suite(tmp_path, "--models", "broken/harness", "--cases", CONTROL_CASES)
    failed = {case for case, verdict in verdicts(report).items() if verdict == "fail"}
    assert failed <= CONTROL_CANNOT, result.stdout[-3000:]  # how much one read holds varies
    assert {verdict for case, verdict in verdicts(report).items() if case not in failed} == {"pass"}


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


@pytest.mark.timeout(120)
def test_server_cmd_with_shell_syntax_runs_as_the_usage_error_shows(tmp_path: Path) -> None:
    command = f"sh -c 'cd tests/third_party && exec {sys.executable} socketserver_echo.py {{port}}'"
    result, report = run_suite(tmp_path, "--server-cmd", command, "--cases", "1.1")
    assert result.returncode == 0, result.stdout
    assert verdicts(report) == {"1.1": "pass"}


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
def test_a_declared_deviation_excuses_the_cases_assertion_and_nothing_else(tmp_path: Path) -> None:
    result, report = run_suite(
        tmp_path,
        "--models",
        "broken/upper,broken/until_eof",
        "--server-cmd",
        "sh -c 'exit 3' {port}",
        "--server-name",
        "exits",
        "--cases",
        "1.1,4.2",
        "--deviation",
        "1.1=changes letters by design",
        "--deviation",
        "4.2=a deviation it does not need",
    )
    outcomes = {(entry["case"], entry["server"]): entry for entry in report["results"]}
    # The declared assertion failing: a deviation, with the declared reason.
    assert outcomes["1.1", "broken/upper"]["verdict"] == "deviation"
    assert outcomes["1.1", "broken/upper"]["reason"] == "changes letters by design"
    # Silence (a timeout) and a server that exits at once (a setup error) stay fails.
    assert outcomes["1.1", "broken/until_eof"]["verdict"] == "fail"
    assert outcomes["1.1", "exits"]["verdict"] == "fail"
    # A declaration the server does not need is stale: a fail.
    for server in ("broken/upper", "broken/until_eof"):
        assert outcomes["4.2", server]["verdict"] == "fail"
        assert "but the case passes" in outcomes["4.2", server]["reason"]
    assert result.returncode == 1


def test_our_models_declare_deviations_only_in_their_declarations() -> None:
    """A model's deviations stand in one place, its declaration, each a real case with its
    reason; the report shows them. (blocking cannot use a --buffer-size above one read.)"""
    cases = all_cases()
    for model in registry.models():
        for case_id, reason in model.deviations.items():
            assert case_id in cases, f"{model.name} declares a deviation from no case: {case_id}"
            assert len(reason.split()) >= 8, f"{model.name} {case_id}: say why, with the kernel's reason"
        assert spec_for(model.name).deviations == model.deviations
    # Nothing that runs them declares more: tox, ./run-tests, CI.
    runners = [ROOT / "tox.ini", ROOT / "run-tests", *(ROOT / ".ci").iterdir()]
    assert not [path.name for path in runners if "--deviation" in path.read_text(encoding="utf-8")]


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("arguments", "complaint"),
    [
        (["--server-cmd", "socat TCP-LISTEN:7,fork PIPE"], "put {port} where the port goes"),
        (["--target", "localhost"], "expected HOST:PORT"),
        (["--deviation", "1.1"], "expected CASE=REASON"),
        (["--deviation", "1.99=no such case"], "no case '1.99'"),
        (["--models", "no_such_model"], "unknown server 'no_such_model'"),
        (["--server-cmd", "cd tests && exec ./server {port}"], "wrap it, with exec"),
    ],
    ids=[
        "server-cmd-without-port",
        "target-without-port",
        "deviation-without-reason",
        "deviation-of-unknown-case",
        "unknown-model",
        "server-cmd-with-shell-syntax",
    ],
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


@pytest.mark.timeout(60)
def test_groups_1_to_6_run_over_ipv6_a_sample_by_default_all_with_the_option() -> None:
    def collected(*arguments: str) -> set[str]:
        command = [sys.executable, "-m", "pytest", "tests/conformance", "-p", "no:cacheprovider"]
        result = subprocess.run(
            [*command, "--collect-only", "-q", "--models", "epoll_mux", *arguments],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return {line for line in result.stdout.splitlines() if "epoll_mux-ipv6" in line}

    sampled = collected("--cases", "1.1,1.2,7.1")
    assert [line.split("::")[1] for line in sampled] == ["test_every_byte_value_round_trips[epoll_mux-ipv6]"]
    everything = collected("--cases", "1.1,1.2,7.1", "--ipv6")
    assert len(everything) == 1 + 4  # 1.1, and 1.2's four bytes; never group 7
