"""The conformance report: merge runs' conformance.json files, render them as Markdown and HTML.

A run of the suite writes one conformance.json (schema version 2: the command, its start
and the machine, as every tool's JSON records them; groups, cases, servers and one result
per case and server). tox tests one server per env, so the whole picture
takes several files; this merges them and writes conformance.json, conformance.html (one
self-contained page) and conformance.md (a summary to paste into a README):

    python3 -m tests.conformance.report OUT_DIR INPUT [INPUT ...]
    python3 -m tests.conformance.report --docs OUT_DIR INPUT [INPUT ...]

An INPUT is a conformance.json file or a directory searched for them. With --docs, the
merged JSON also replaces docs/conformance.json, the run the README and the docs quote
(bench/quotes.py; then python3 -m bench.report rewrites their sections). Standard
library only.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import TypedDict

import toolkit.machine

# --- the schema (version 2): what a run writes and what a merge reads ---

SCHEMA = 2


class Machine(toolkit.machine.Machine):
    implementation: str  # CPython, PyPy


class GroupEntry(TypedDict):
    number: int
    title: str
    needs: str  # cases.Needs' value: address, process or lifecycle
    summary: str


class CaseEntry(TypedDict):
    id: str  # "4.2": group 4, case 2
    group: int
    title: str
    timeout: float


class ServerEntry(TypedDict):
    name: str
    command: str | None  # as a reader would type it; None for a --target
    address: str | None  # a --target's HOST:PORT; None for a server the suite started
    capabilities: list[str]
    deviations: dict[str, str]  # case id -> the declared reason


class Variant(TypedDict):
    """One pytest item of a case on a server (a parametrized case has several)."""

    name: str  # the parameter's id; "" for an unparametrized case
    outcome: str  # one of VERDICTS
    message: str  # the one-line failure message, or the reason for n/a or deviation
    details: str  # the whole traceback of a failure
    measured: list[str]  # figures recorded on the way: record_property("measured", ...)
    figures: dict[str, float]  # the same, by name, for the docs to quote: record_property("figure", ...)


class Result(TypedDict):
    """One cell of the matrix: a case on a server, with its worst variant's verdict."""

    case: str
    server: str
    verdict: str
    reason: str
    duration: float
    variants: list[Variant]


class Report(TypedDict):
    schema: int
    suite: str
    version: str
    started: str  # UTC, ISO 8601
    machine: Machine
    hypothesis_profile: str
    command: str
    duration_seconds: float
    groups: list[GroupEntry]
    cases: list[CaseEntry]
    servers: list[ServerEntry]
    results: list[Result]


VERDICTS = ("pass", "fail", "deviation", "n/a")
# Worst first: a group takes its worst verdict's colour, so one failure is never hidden by passes.
SEVERITY = ("fail", "deviation", "pass", "n/a")
MARKDOWN_MARKS = {"pass": "✅", "fail": "❌", "deviation": "⚠️", "n/a": "—"}
CSS_CLASSES = {"pass": "pass", "fail": "fail", "deviation": "deviation", "n/a": "na", "": "not-run"}
FILENAME = "conformance.json"
COMMITTED = Path(__file__).resolve().parents[2] / "docs" / FILENAME  # the run the docs quote
# The figures a case records by name (record_property("figure", (NAME, value))), which the
# docs quote from the committed report: bench/quotes.py.
C10K_ECHOED = "clients_echoed"  # 10.1: clients echoed at once
C10K_TURNED_AWAY = "clients_turned_away"  # 10.1: past a declared cap
C10K_RSS = "rss_per_connection_kib"  # 10.1: RSS growth over the idle server, per client echoed
EMFILE_CPU = "cpu_percent_at_emfile"  # 9.1: the server's CPU, % of one core, while out of descriptors
Pair = tuple[str, str]  # (case id, server name): one cell of the matrix


def case_sort_key(case_id: str) -> tuple[int, ...]:
    """Numeric order, so "1.2" sorts before "1.10"."""
    return tuple(int(part) for part in case_id.split("."))


def load(path: Path) -> Report:
    report: Report = json.loads(path.read_text(encoding="utf-8"))
    if report.get("schema") != SCHEMA:
        raise ValueError(f"{path}: not a schema {SCHEMA} conformance report")
    return report


def merge(reports: Sequence[Report]) -> Report:
    """One report from several runs. For the same case and server, the worst verdict
    wins (fail over deviation over pass over n/a; the later run on a tie): tox runs the
    suite once per interpreter, and a pass on one must not hide a fail on another. A
    verdict that differs between runs names the interpreter it came from."""
    if not reports:
        raise ValueError("no reports to merge")
    groups: dict[int, GroupEntry] = {}
    cases: dict[str, CaseEntry] = {}
    servers: dict[str, ServerEntry] = {}
    runs: defaultdict[Pair, list[tuple[Result, Machine]]] = defaultdict(list)
    for report in reports:
        for group in report["groups"]:
            groups.setdefault(group["number"], group)
        for case in report["cases"]:
            cases.setdefault(case["id"], case)
        for server in report["servers"]:
            servers.setdefault(server["name"], server)
        for result in report["results"]:
            runs[result["case"], result["server"]].append((result, report["machine"]))
    results = [_worst(pair_runs) for pair_runs in runs.values()]
    return _ordered(
        {
            **reports[0],
            # Every run stamps UTC in the same ISO format, so the earliest is the least string.
            "started": min(report["started"] for report in reports),
            "command": "; ".join(dict.fromkeys(report["command"] for report in reports)),
            "duration_seconds": sum(report["duration_seconds"] for report in reports),
            "groups": list(groups.values()),
            "cases": list(cases.values()),
            "servers": list(servers.values()),
            "results": results,
        }
    )


def _worst(runs: list[tuple[Result, Machine]]) -> Result:
    """The worst of one pair's results (the latest among equals), naming its interpreter
    if the runs disagree."""
    result, machine = min(reversed(runs), key=lambda run: SEVERITY.index(run[0]["verdict"]))
    if len({run["verdict"] for run, _ in runs}) == 1:
        return result
    where = f"on {machine['implementation']} {machine['python']}"
    return {**result, "reason": f"{result['reason']} ({where})" if result["reason"] else where}


def _ordered(report: Report) -> Report:
    """The report with groups, cases and results in reading order; servers keep theirs (the columns)."""
    column = {server["name"]: index for index, server in enumerate(report["servers"])}
    return {
        **report,
        "groups": sorted(report["groups"], key=lambda group: group["number"]),
        "cases": sorted(report["cases"], key=lambda case: case_sort_key(case["id"])),
        "results": sorted(
            report["results"],
            key=lambda result: (case_sort_key(result["case"]), column.get(result["server"], len(column))),
        ),
    }


# --- what both renderers say ---


def _results(report: Report) -> dict[Pair, Result]:
    return {(result["case"], result["server"]): result for result in report["results"]}


def _cases_by_group(report: Report) -> list[tuple[GroupEntry, list[CaseEntry]]]:
    members: defaultdict[int, list[CaseEntry]] = defaultdict(list)
    for case in report["cases"]:
        members[case["group"]].append(case)
    return [(group, members[group["number"]]) for group in report["groups"] if members[group["number"]]]


def _group_summary(cases: list[CaseEntry], server: str, results: dict[Pair, Result]) -> tuple[str, str]:
    """("5/7 pass, 2 fail", worst verdict) for one group on one server; ("", "") if none of it ran."""
    verdicts = Counter(
        results[case["id"], server]["verdict"] for case in cases if (case["id"], server) in results
    )
    if not verdicts:
        return "", ""
    worst = next(verdict for verdict in SEVERITY if verdicts[verdict])
    if verdicts["n/a"] == len(cases):
        return "n/a", worst
    # Deviations are counted on their own: a documented departure is not a pass.
    counts = [f"{verdicts[other]} {other}" for other in VERDICTS if other != "pass" and verdicts[other]]
    if not_run := len(cases) - verdicts.total():
        counts.append(f"{not_run} not run")
    return ", ".join([f"{verdicts['pass']}/{len(cases)} pass", *counts]), worst


def summary_rows(report: Report, servers: Sequence[str], absent: str = "") -> list[list[str]]:
    """A row per group that ran: its title, then "5/7 pass, 2 fail" for each server, or
    `absent` for a server that ran none of it."""
    results = _results(report)
    return [
        [
            f"{group['number']} {group['title']}",
            *(_group_summary(cases, name, results)[0] or absent for name in servers),
        ]
        for group, cases in _cases_by_group(report)
    ]


def result_of(report: Report, case_id: str, server: str) -> Result | None:
    return next((r for r in report["results"] if (r["case"], r["server"]) == (case_id, server)), None)


def _failure_message(result: Result) -> str:
    failed = [variant["message"] for variant in result["variants"] if variant["outcome"] == "fail"]
    return str(result["reason"] or next(iter(failed), "failed"))


def _run_line(report: Report) -> str:
    machine = report["machine"]
    servers = ", ".join(server["name"] for server in report["servers"])
    return (
        f"{len(report['cases'])} cases against {servers} on {report['started'][:16].replace('T', ' ')} UTC"
        f" ({machine['implementation']} {machine['python']}, hypothesis profile"
        f" {report['hypothesis_profile']}, {report['duration_seconds']:.0f} s)"
    )


# --- Markdown ---


def _measured(report: Report) -> list[tuple[str, str, str]]:
    """(case, server, figure) for every figure a case recorded on the way."""
    return [
        (result["case"], result["server"], str(figure))
        for result in report["results"]
        for variant in result["variants"]
        for figure in variant.get("measured", [])
    ]


def _md_row(cells: Sequence[str]) -> str:
    # A '|' would end the cell and a newline the row; both can come from free text such as reasons.
    return "| " + " | ".join(cell.replace("|", "\\|").replace("\n", " ") for cell in cells) + " |"


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return [_md_row(header), _md_row(["---"] * len(header)), *(_md_row(row) for row in rows), ""]


def _md_code(text: str) -> str:
    """An inline code span: failure messages are code-like and may hold '<', '*' or backticks."""
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    return f"{fence} {text} {fence}"


def _md_mark(result: Result | None) -> str:
    return "" if result is None else MARKDOWN_MARKS[result["verdict"]]


def render_markdown(report: Report) -> str:
    report = _ordered(report)
    results = _results(report)
    titles = {case["id"]: case["title"] for case in report["cases"]}
    servers = [server["name"] for server in report["servers"]]
    grouped = _cases_by_group(report)
    summary = summary_rows(report, servers)
    matrix = [
        [f"{case['id']} {case['title']}", *(_md_mark(results.get((case["id"], name))) for name in servers)]
        for _, cases in grouped
        for case in cases
    ]
    lines = [f"## {report['suite']}", "", _run_line(report) + ".", ""]
    lines += _md_table(["group", *servers], summary)
    legend = ", ".join(f"{MARKDOWN_MARKS[verdict]} {verdict}" for verdict in VERDICTS)
    lines += ["### Cases", "", f"{legend}, blank: not run.", ""]
    lines += _md_table(["case", *servers], matrix)
    failures = [
        f"- {r['case']} {titles.get(r['case'], '')}, on {r['server']}: {_md_code(_failure_message(r))}"
        for r in report["results"]
        if r["verdict"] == "fail"
    ]
    if failures:
        lines += ["### Failures", "", *failures, ""]
    if measured := _measured(report):
        lines += [
            "### Measured",
            "",
            *(f"- {case} {server}: {figure}" for case, server, figure in measured),
            "",
        ]
    # One reason usually covers many cases (a --target server has no process to measure): say it once.
    reasons: defaultdict[tuple[str, str, str], list[str]] = defaultdict(list)
    for result in report["results"]:
        if result["verdict"] in ("deviation", "n/a"):
            reasons[result["server"], result["verdict"], result["reason"]].append(result["case"])
    if reasons:
        lines += ["### Deviations and cases not applicable", ""]
        lines += [
            f"- {server}, {verdict} ({', '.join(ids)}): {why}"
            for (server, verdict, why), ids in reasons.items()
        ]
        lines.append("")
    return "\n".join(lines)


# --- HTML ---

CSS = """
body { font: 15px/1.45 system-ui, sans-serif; color: #222; margin: 1rem; }
h1 { font-size: 1.5rem; margin-bottom: .25rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
code, pre { font: 13px/1.4 ui-monospace, monospace; }
table { border-collapse: collapse; margin: .5rem 0; }
th, td { border: 1px solid #ddd; padding: .3rem .5rem; text-align: left; vertical-align: top; }
thead th { position: sticky; top: 0; background: #f4f4f4; box-shadow: 0 1px 0 #bbb; }
tbody th { font-weight: normal; } .id { font-weight: 600; }
small, .timeout { color: #666; font-size: .8em; } td small { display: block; max-width: 18rem; }
tr.group th { background: #fafafa; padding-top: .9rem; }
.pass { background: #dcf3dc; } .fail { background: #f9d6d5; } .deviation { background: #fdebc8; }
.na { background: #ececec; color: #555; } .not-run { background: #fff; }
.legend span { display: inline-block; padding: 0 .5rem; border: 1px solid #ddd; }
td.fail a { float: right; text-decoration: none; padding-left: .4rem; }
details pre { white-space: pre-wrap; max-width: 60rem; max-height: 24rem; overflow: auto;
              background: #fff; padding: .5rem; border: 1px solid #e4b9b7; }
summary { cursor: pointer; } .failures li { margin-bottom: .4rem; }
@media (max-width: 40rem) { body { font-size: 14px; margin: .4rem; } th, td { padding: .2rem .3rem; } }
"""


def _h(value: object) -> str:
    """Text from the report, safe in HTML content and in quoted attributes."""
    return escape(str(value))


def _anchor(case_id: str, server: str) -> str:
    # Server names may hold '/' (broken/<name>); a plain-text fragment is the safest link target.
    return "fail-" + re.sub(r"[^\w.-]", "_", f"{case_id}-{server}")


def _html_cell(result: Result | None) -> str:
    if result is None:
        return '<td class="not-run" title="not run"></td>'
    verdict = result["verdict"]
    if verdict == "pass":
        return '<td class="pass">pass</td>'
    if verdict != "fail":
        why = _h(result["reason"])
        return f'<td class="{CSS_CLASSES[verdict]}" title="{why}">{_h(verdict)}<small>{why}</small></td>'
    body = [f"<p>{_h(_failure_message(result))}</p>"]
    for variant in result["variants"]:
        # A case with one pytest item has an unnamed variant whose message is the one just shown.
        if variant["outcome"] == "fail" and variant["name"]:
            body.append(f"<p><b>{_h(variant['name'])}</b>: {_h(variant['message'])}</p>")
        if variant["outcome"] == "fail" and variant["details"]:
            body.append(f"<pre>{_h(variant['details'])}</pre>")
    link = f'<a href="#{_anchor(result["case"], result["server"])}" title="in the list of failures">↓</a>'
    return f'<td class="fail">{link}<details><summary>fail</summary>{"".join(body)}</details></td>'


def _html_column(server: ServerEntry) -> str:
    # The tooltip says how the server was reached: its command line, or a --target's address.
    how = server["command"] or server["address"] or ""
    return f'<th scope="col" title="{_h(how)}">{_h(server["name"])}</th>'


def _html_tables(report: Report, header: str, results: dict[Pair, Result]) -> str:
    names = [server["name"] for server in report["servers"]]
    summary, bodies = [], []
    for group, cases in _cases_by_group(report):
        label = f"{_h(group['number'])} {_h(group['title'])}"
        cells = [_group_summary(cases, name, results) for name in names]
        summary.append(
            f'<tr><th scope="row">{label}</th>'
            + "".join(f'<td class="{CSS_CLASSES[worst]}">{_h(text)}</td>' for text, worst in cells)
            + "</tr>"
        )
        heading = f"<b>{label}</b> <small>{_h(group['summary'])}</small>"
        rows = [f'<tr class="group"><th colspan="{len(names) + 1}">{heading}</th></tr>']
        rows += [
            f'<tr id="case-{_h(case["id"])}"><th scope="row"><span class="id">{_h(case["id"])}</span> '
            f'{_h(case["title"])} <span class="timeout">{_h(format(case["timeout"], "g"))} s</span></th>'
            + "".join(_html_cell(results.get((case["id"], name))) for name in names)
            + "</tr>"
            for case in cases
        ]
        bodies.append("<tbody>\n" + "\n".join(rows) + "\n</tbody>")
    return (
        f"<h2>Summary</h2>\n<table>\n<thead><tr><th>group</th>{header}</tr></thead>\n"
        f"<tbody>\n{chr(10).join(summary)}\n</tbody>\n</table>\n"
        f'<h2>Cases</h2>\n<table class="matrix">\n<thead><tr><th>case</th>{header}</tr></thead>\n'
        f"{chr(10).join(bodies)}\n</table>"
    )


def render_html(report: Report) -> str:
    report = _ordered(report)
    results = _results(report)
    titles = {case["id"]: case["title"] for case in report["cases"]}
    header = "".join(_html_column(server) for server in report["servers"])
    failures = [
        f'<li id="{_anchor(r["case"], r["server"])}"><a href="#case-{_h(r["case"])}">{_h(r["case"])}</a> '
        f"{_h(titles.get(r['case'], ''))}, on <b>{_h(r['server'])}</b>: "
        f"<code>{_h(_failure_message(r))}</code></li>"
        for r in report["results"]
        if r["verdict"] == "fail"
    ]
    failure_list = '<ul class="failures">\n' + "\n".join(failures) + "\n</ul>" if failures else "<p>None.</p>"
    figures = "".join(
        f"<li>{_h(case)} <b>{_h(server)}</b>: {_h(figure)}</li>\n"
        for case, server, figure in _measured(report)
    )
    measured = f"<h2>Measured</h2>\n<ul>\n{figures}</ul>\n" if figures else ""
    machine = report["machine"]
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_h(report["suite"])}: conformance report</title>
<style>{CSS}</style>
</head>
<body>
<header>
<h1>{_h(report["suite"])} {_h(report["version"])}</h1>
<p>{_h(_run_line(report))}</p>
<p><small>{_h(machine["cpu"])}, {_h(machine["cores"])} cores, {_h(machine["kernel"])}.
Command: <code>{_h(report["command"])}</code></small></p>
</header>
<p class="legend"><span class="pass">pass</span> <span class="fail">fail</span>
<span class="deviation">deviation: a documented departure</span> <span class="na">n/a: not applicable</span>
<span class="not-run">blank: not run</span></p>
{_html_tables(report, header, results)}
<h2 id="failures">Failures</h2>
{failure_list}
{measured}</body>
</html>
"""


# --- files and the command line ---


def write_report(report: Report, directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    texts = {
        FILENAME: json.dumps(_ordered(report), indent=2, ensure_ascii=False) + "\n",
        "conformance.html": render_html(report),
        "conformance.md": render_markdown(report),
    }
    for name, text in texts.items():
        (directory / name).write_text(text, encoding="utf-8")
    return [directory / name for name in texts]


def _find_inputs(inputs: Sequence[Path], output: Path) -> list[Path]:
    found: list[Path] = []
    for path in inputs:
        found += sorted(path.rglob(FILENAME)) if path.is_dir() else [path]
    # The output directory may sit among the inputs, and last time's merge is not a run.
    unique = dict.fromkeys(path.resolve() for path in found)  # one file named twice is still one run
    return [path for path in unique if path != output.resolve()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m tests.conformance.report",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,  # keep the docstring's usage block as written
    )
    parser.add_argument("out_dir", type=Path, help="where to write conformance.{json,html,md}")
    parser.add_argument("inputs", type=Path, nargs="+", help="conformance.json files, or directories of them")
    parser.add_argument("--docs", action="store_true", help=f"also write the merged JSON to {COMMITTED}")
    args = parser.parse_args(argv)
    if missing := [str(path) for path in args.inputs if not path.exists()]:
        print(f"report: no such file or directory: {', '.join(missing)}", file=sys.stderr)
        return 2
    if not (paths := _find_inputs(args.inputs, args.out_dir / FILENAME)):
        print(f"report: no {FILENAME} in {', '.join(map(str, args.inputs))}", file=sys.stderr)
        return 2
    written = write_report(merge([load(path) for path in paths]), args.out_dir)
    if args.docs:
        COMMITTED.write_text((args.out_dir / FILENAME).read_text(encoding="utf-8"), encoding="utf-8")
        written.append(COMMITTED)
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
