"""The conformance report renders, merges and round-trips a small hand-made run.

No server runs here: the report is a dict built below with one of every verdict, a
case left unrun, ids that sort differently as text and as numbers ("1.2" < "1.10"),
and a failure whose details carry markup the HTML must not execute.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from tests.conformance.report import (
    SCHEMA,
    Report,
    Result,
    Variant,
    case_sort_key,
    load,
    main,
    merge,
    render_html,
    render_markdown,
    write_report,
)

pytestmark = pytest.mark.timeout(30)

PAYLOAD = "<script>alert('echo')</script>"


def variant(name: str, outcome: str, message: str = "", details: str = "", *measured: str) -> Variant:
    return {
        "name": name,
        "outcome": outcome,
        "message": message,
        "details": details,
        "measured": [*measured],
        "figures": {},
    }


def result(
    case: str, server: str, verdict: str, reason: str = "", variants: list[Variant] | None = None
) -> Result:
    return {
        "case": case,
        "server": server,
        "verdict": verdict,
        "reason": reason,
        "duration": 0.1,
        "variants": variants if variants is not None else [variant("", verdict)],
    }


def sample_report() -> Report:
    failure = variant(
        "0xff",
        "fail",
        "AssertionError: echo differs at byte 5",
        f"def test():\n>   assert echoed == {PAYLOAD}\nE   AssertionError",
    )
    return {
        "schema": SCHEMA,
        "suite": "io-models conformance",
        "version": "0.1.0",
        "started": "2026-11-23T11:40:00+00:00",
        "machine": {
            "cpu": "AMD EPYC",
            "cores": 2,
            "kernel": "Linux 6.1.0",
            "python": "3.11.7",
            "implementation": "CPython",
        },
        "hypothesis_profile": "fast",
        "command": "pytest --report reports",
        "duration_seconds": 24.3,
        # Out of order on purpose: the report sorts groups and cases itself.
        "groups": [
            {"number": 2, "title": "Streaming", "needs": "address", "summary": "echo while sending"},
            {"number": 1, "title": "Data fidelity", "needs": "address", "summary": "bytes come back"},
        ],
        "cases": [
            {"id": "1.10", "group": 1, "title": "Pipes | survive", "timeout": 30.0},
            {"id": "2.1", "group": 2, "title": "Echo arrives early", "timeout": 10.0},
            {"id": "1.2", "group": 1, "title": "Every byte value", "timeout": 30.0},
        ],
        "servers": [
            {
                "name": "select_mux",
                "command": "python -m select_mux --port {port}",
                "address": None,
                "capabilities": ["address", "process", "lifecycle"],
                "deviations": {"1.10": "one extra chunk"},
            },
            {
                "name": "remote",
                "command": None,
                "address": "127.0.0.1:7007",
                "capabilities": ["address"],
                "deviations": {},
            },
        ],
        "results": [
            result("1.2", "select_mux", "pass"),
            result(
                "1.2",
                "remote",
                "fail",
                "AssertionError: echo differs at byte 5",
                [variant("nul", "pass"), failure],
            ),
            result("1.10", "select_mux", "deviation", "one extra chunk"),
            result("1.10", "remote", "pass"),
            result("2.1", "remote", "n/a", "no process to measure"),
            # 2.1 on select_mux was deselected: not run.
        ],
    }


def only(report: Report, server: str, command: str) -> Report:
    """The run that tox would make for one server."""
    single = copy.deepcopy(report)
    single["servers"] = [entry for entry in single["servers"] if entry["name"] == server]
    single["results"] = [entry for entry in single["results"] if entry["server"] == server]
    single["command"] = command
    return single


def test_case_ids_sort_as_numbers() -> None:
    assert sorted(["1.10", "2.1", "1.2"], key=case_sort_key) == ["1.2", "1.10", "2.1"]


def test_markdown_summary_matrix_and_notes() -> None:
    markdown = render_markdown(sample_report())
    assert "3 cases against select_mux, remote on 2026-11-23 11:40 UTC" in markdown
    assert "CPython 3.11.7, hypothesis profile fast" in markdown
    # Summary: a deviation is counted apart from passes; a group never run is blank.
    assert "| 1 Data fidelity | 1/2 pass, 1 deviation | 1/2 pass, 1 fail |" in markdown
    assert "| 2 Streaming |  | n/a |" in markdown
    assert "| 1.2 Every byte value | ✅ | ❌ |" in markdown
    assert "| 1.10 Pipes \\| survive | ⚠️ | ✅ |" in markdown
    assert "| 2.1 Echo arrives early |  | — |" in markdown
    assert markdown.index("| 1.2 ") < markdown.index("| 1.10 ") < markdown.index("| 2.1 ")
    assert "- 1.2 Every byte value, on remote: ` AssertionError: echo differs at byte 5 `" in markdown
    assert "- select_mux, deviation (1.10): one extra chunk" in markdown
    assert "- remote, n/a (2.1): no process to measure" in markdown


def test_markdown_says_a_shared_reason_once() -> None:
    report = sample_report()
    report["cases"].append({"id": "2.2", "group": 2, "title": "Streams both ways", "timeout": 10.0})
    report["results"].append(result("2.2", "remote", "n/a", "no process to measure"))
    markdown = render_markdown(report)
    assert "| 2 Streaming |  | n/a |" in markdown
    assert "- remote, n/a (2.1, 2.2): no process to measure" in markdown
    assert markdown.count("no process to measure") == 1


def test_html_is_self_contained_and_escaped() -> None:
    page = render_html(sample_report())
    assert page.startswith("<!doctype html>")
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page), "no external resources"
    assert "<script" not in page
    assert "&lt;script&gt;alert(&#x27;echo&#x27;)&lt;/script&gt;" in page
    assert "<style>" in page


def test_html_fail_cell_expands_and_links_to_the_failure_list() -> None:
    page = render_html(sample_report())
    assert '<td class="fail"><a href="#fail-1.2-remote"' in page
    assert '<li id="fail-1.2-remote">' in page
    assert "<details><summary>fail</summary>" in page
    assert "<b>0xff</b>: AssertionError: echo differs at byte 5" in page
    assert "<pre>def test():" in page
    assert 'title="one extra chunk">deviation<small>one extra chunk</small>' in page
    assert 'class="na" title="no process to measure">n/a' in page
    assert '<td class="not-run"' in page
    assert '<span class="timeout">30 s</span>' in page
    assert page.index('id="case-1.2"') < page.index('id="case-1.10"') < page.index('id="case-2.1"')


def test_merge_of_one_server_runs() -> None:
    report = sample_report()
    first = only(report, "select_mux", "tox -e select_mux")
    second = only(report, "remote", "tox -e remote")
    second["started"] = "2026-11-23T11:00:00+00:00"
    rerun = only(report, "select_mux", "tox -e select_mux")
    rerun["results"] = [result("1.2", "select_mux", "fail", "slow")]

    merged = merge([first, second, rerun])

    assert [server["name"] for server in merged["servers"]] == ["select_mux", "remote"]
    assert [case["id"] for case in merged["cases"]] == ["1.2", "1.10", "2.1"]
    verdicts = {(entry["case"], entry["server"]): entry["verdict"] for entry in merged["results"]}
    assert verdicts[("1.2", "select_mux")] == "fail", "the worse verdict stays, whichever run came last"
    assert verdicts[("1.10", "select_mux")] == "deviation"
    assert verdicts[("1.2", "remote")] == "fail"
    assert merged["command"] == "tox -e select_mux; tox -e remote"
    assert merged["duration_seconds"] == pytest.approx(3 * 24.3)
    assert merged["started"] == "2026-11-23T11:00:00+00:00", "a merge started when its first run did"
    assert "| 1.2 Every byte value | ❌ | ❌ |" in render_markdown(merged)


def test_write_report_round_trips(tmp_path: Path) -> None:
    paths = write_report(sample_report(), tmp_path / "new")
    assert [path.name for path in paths] == ["conformance.json", "conformance.html", "conformance.md"]
    assert all(path.is_file() for path in paths)
    loaded = load(paths[0])
    assert loaded == merge([sample_report()])
    assert [case["id"] for case in loaded["cases"]] == ["1.2", "1.10", "2.1"]
    assert render_markdown(loaded) == paths[2].read_text(encoding="utf-8")


def test_cli_merges_a_directory_of_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = tmp_path / "runs"
    report = sample_report()
    for server in ("select_mux", "remote"):
        (runs / server).mkdir(parents=True)
        single = only(report, server, f"tox -e {server}")
        (runs / server / "conformance.json").write_text(json.dumps(single), encoding="utf-8")
    out = runs / "merged"  # inside the input: its own output must not count as a run next time

    for _ in range(2):
        assert main([str(out), str(runs)]) == 0

    printed = capsys.readouterr().out.splitlines()
    assert printed[-3:] == [
        str(out / name) for name in ("conformance.json", "conformance.html", "conformance.md")
    ]
    merged = load(out / "conformance.json")
    # A directory's runs are read in path order (remote/ before select_mux/), and so are the columns.
    assert merged["command"] == "tox -e remote; tox -e select_mux"
    markdown = (out / "conformance.md").read_text(encoding="utf-8")
    assert "| 1 Data fidelity | 1/2 pass, 1 fail | 1/2 pass, 1 deviation |" in markdown


def test_cli_without_inputs_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "out"), str(tmp_path / "empty")]) == 2
    assert main([str(tmp_path / "out"), str(tmp_path / "missing.json")]) == 2
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == 2
    assert "no conformance.json" in errors[0]
    assert "missing.json" in errors[1]
    assert not (tmp_path / "out").exists()


def test_measured_figures_are_listed_escaped() -> None:
    report = sample_report()
    measured = variant("", "pass", "", "", f"1 KiB {PAYLOAD}")
    report["results"].append(result("2.1", "select_mux", "pass", variants=[measured]))
    assert f"- 2.1 select_mux: 1 KiB {PAYLOAD}" in render_markdown(report)
    html = render_html(report)
    assert "<h2>Measured</h2>" in html
    assert PAYLOAD not in html
    assert "<li>2.1 <b>select_mux</b>: 1 KiB &lt;script&gt;" in html
    assert "Measured" not in render_html(sample_report())  # no figures, no section


def test_merge_keeps_the_worst_verdict_and_names_its_interpreter() -> None:
    on_py310 = only(sample_report(), "select_mux", "tox -e py310")
    on_py310["machine"] = {**on_py310["machine"], "python": "3.10.14"}
    on_py310["results"] = [result("1.2", "select_mux", "fail", "AssertionError: echo differs")]
    on_py313 = only(sample_report(), "select_mux", "tox -e py313")
    on_py313["machine"] = {**on_py313["machine"], "python": "3.13.1"}

    for runs in ([on_py310, on_py313], [on_py313, on_py310]):  # whichever came last
        [merged] = [entry for entry in merge(runs)["results"] if entry["case"] == "1.2"]
        assert merged["verdict"] == "fail", "a pass on one interpreter hid a fail on another"
        assert merged["reason"] == "AssertionError: echo differs (on CPython 3.10.14)"
    # Runs that agree keep their reason as it was.
    [agreed] = [entry for entry in merge([on_py313, on_py313])["results"] if entry["case"] == "1.10"]
    assert agreed["reason"] == "one extra chunk"
