"""The reading guide stays true to the code it links to.

For every Markdown link in README.md and docs/*.md to a local file: the file exists, and
an anchor to a heading (`page.md#section`) names a heading that exists. For every link
to lines (`../epoll_mux/server.py#L129-L142`, or `#L129`): the range lies within the
file, and the first `code` in the link's text names what is there. A name the file
defines (`read()`, `Client`) must be linked at its `def` or `class`, and a range that
starts there must end where the definition ends; a constant (`EPOLLOUT`) may be
anywhere in the range; any other code (`sendall()`, `self.write(client)`, `outbuf`)
must be on the first line. So when a server.py gains or loses lines, every link that
moved fails here, with where its code is now and the anchor to write instead.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import unquote

import pytest

from bench import quotes, report
from docs import syscalls, waits
from tests.conformance import report as conformance
from toolkit import registry

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
GUIDE = [
    "README.md",
    *(f"{model}.md" for model in registry.names()),
    "comparison.md",
    "io-models.md",
    "which-model.md",
]
PAGES = sorted([ROOT / "README.md", *DOCS.glob("*.md")])

# An inline link or image: [text](target) or [text](target "title"). The text may hold
# `code` and one level of brackets; the target may hold one level of parentheses.
LINK = re.compile(
    r"!?\[(?P<text>(?:[^\[\]]|\[[^\[\]]*\])*)\]"
    r"\(\s*<?(?P<target>[^()\s<>]*(?:\([^()\s]*\)[^()\s<>]*)*)>?(?:\s+\"[^\"]*\")?\s*\)"
)
FENCE = re.compile(r"^ {0,3}(```|~~~)")
HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
CODE_SPAN = re.compile(r"(`+)(?P<code>.+?)\1", re.DOTALL)
LINE_ANCHOR = re.compile(r"L(?P<first>\d+)(?:-L(?P<last>\d+))?")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:|^//")
HEADING = re.compile(r"^ {0,3}#{1,6}\s+(?P<title>.+?)\s*#*\s*$")
CONSTANT = re.compile(r"[A-Z][A-Z0-9_]*")


@dataclass(frozen=True)
class Link:
    page: Path
    line: int  # in the page, from 1
    text: str
    target: str

    def __str__(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}: [{self.text}]({self.target})"


def blank_out(match: re.Match[str]) -> str:
    """Replace a span with spaces, keeping its newlines, so line numbers stay right."""
    return re.sub(r"[^\n]", " ", match.group(0))


def prose(page: Path) -> str:
    """The page without fenced code blocks, HTML comments and code spans holding `](`."""
    lines = page.read_text(encoding="utf-8").split("\n")
    in_fence = False
    for number, line in enumerate(lines):
        fenced = FENCE.match(line)
        if fenced or in_fence:
            lines[number] = ""
        if fenced:
            in_fence = not in_fence
    text = HTML_COMMENT.sub(blank_out, "\n".join(lines))
    return CODE_SPAN.sub(lambda m: blank_out(m) if "](" in m.group(0) else m.group(0), text)


def links(page: Path) -> list[Link]:
    text = prose(page)
    return [
        Link(page, text.count("\n", 0, match.start()) + 1, match.group("text"), match.group("target"))
        for match in LINK.finditer(text)
    ]


def local(link: Link) -> tuple[Path, str] | None:
    """The file a local link points to, and its anchor; None for a URL."""
    if SCHEME.match(link.target):
        return None
    path, _, anchor = link.target.partition("#")
    return (link.page.parent / unquote(path)).resolve() if path else link.page, anchor


def slug(title: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", title)  # a link in a heading: its text
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


@cache
def anchors(page: Path) -> frozenset[str]:
    found: set[str] = set()
    repeats: dict[str, int] = {}  # a repeated heading gets -1, -2, ... as on GitHub
    for line in prose(page).split("\n"):
        heading = HEADING.match(line)
        if heading:
            base = slug(heading.group("title"))
            found.add(f"{base}-{repeats[base]}" if base in repeats else base)
            repeats[base] = repeats.get(base, 0) + 1
    return frozenset(found)


@cache
def source_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


@cache
def definitions(path: Path) -> dict[tuple[str, int], int]:
    """(name, first line) of every def and class in a Python file -> its last line.

    The last line as a reader sees it: the last statement, and any comment lines right
    after it that are indented as its body.
    """
    if path.suffix != ".py":
        return {}
    lines = source_lines(path)
    ends = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            end = node.end_lineno or node.lineno
            body_indent = node.col_offset + 1
            while end < len(lines) and re.match(rf"\s{{{body_indent},}}#", lines[end]):
                end += 1
            ends[node.name, node.lineno] = end
    return ends


def identifier(text: str) -> tuple[str, str] | None:
    """The code a link's text names: its first `code`, and that code less a trailing `(...)`."""
    span = CODE_SPAN.search(text)
    if span is None:
        return None
    code = span.group("code").strip()
    call = re.fullmatch(r"([\w.]+)\(.*\)", code, re.DOTALL)
    return code, call.group(1) if call else code


def occurs(name: str, line: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(name)}(?!\w)", line) is not None


def is_constant(name: str) -> bool:
    return CONSTANT.fullmatch(name.rsplit(".", 1)[-1]) is not None


def defined_at(name: str, path: Path) -> dict[int, int]:
    """Where a bare name (`read`, not `self.read`) is a def or class in the file: first -> last line."""
    return {first: last for (defined, first), last in definitions(path).items() if defined == name}


def where_now(code: str, name: str, path: Path, first: int, last: int) -> str:
    """Where the named code is in the file now, and the range to link instead."""
    lines = source_lines(path)
    found = [number for number, line in enumerate(lines, 1) if occurs(name, line)]
    if not found:
        return f"`{name}` no longer appears in {path.relative_to(ROOT)}"
    # Best guesses first: the def of a bare name; the link's whole code, as written; the
    # name in code, not in a comment; then anywhere.
    literal = [number for number in found if code in lines[number - 1]]
    in_code = [number for number in found if occurs(name, lines[number - 1].split("#")[0])]
    defined = defined_at(name, path)
    best = min(list(defined) or literal or in_code or found, key=lambda number: abs(number - first))
    if best in defined:
        new_first, new_last = best, defined[best] if last > first else best  # the whole def, as now
    else:
        # Keep the range's length; a constant may sit anywhere in it, so move it just enough.
        shift = best - last if is_constant(name) and best > last else best - first
        new_first, new_last = first + shift, last + shift
    anchor = f"#L{new_first}" if new_first == new_last else f"#L{new_first}-L{new_last}"
    others = [str(number) for number in (in_code or found) if number != best][:8]
    also = f" (also on line {', '.join(others)})" if others else ""
    return f"`{name}` is now on line {best}: `{lines[best - 1].strip()}`{also}; try {anchor}"


def names_it(name: str, lines: list[str], first: int, last: int, defined: dict[int, int]) -> bool:
    """A name defined in the file (`read()`, `Client`) is linked at its def; a constant
    (`EPOLLOUT`) anywhere in the range; any other code (`sendall()`, `self.write(client)`,
    `outbuf`) on the first line."""
    if defined:
        return first in defined
    if is_constant(name):
        return any(occurs(name, line) for line in lines[first - 1 : last])
    return occurs(name, lines[first - 1])


def line_link_problem(link: Link, path: Path, anchor: re.Match[str]) -> str | None:
    """What is wrong with a link to lines, or None."""
    lines = source_lines(path)
    first = int(anchor.group("first"))
    last = int(anchor.group("last") or first)
    if not 1 <= first <= last <= len(lines):
        return f"lines {first}-{last} are not within {path.relative_to(ROOT)} ({len(lines)} lines)"
    named = identifier(link.text)
    if named is None:
        return "names no code: put the identifier in backticks, as in [`read()`](../epoll_mux/server.py#L129)"
    code, name = named
    defined = defined_at(name, path)
    end = defined.get(first, last)
    if last not in (first, end):  # a range that starts at the def covers all of it
        return f"`{name}` spans lines {first}-{end} now, not {first}-{last}; try #L{first}-L{end}"
    if names_it(name, lines, first, last, defined):
        return None
    where = f"line {first} (`{lines[first - 1].strip()}`)"
    if defined:
        where += ", as a def"
    elif is_constant(name):
        where = f"lines {first}-{last}"
    return f"`{name}` is not on {where}: {where_now(code, name, path, first, last)}"


def problems(page: Path) -> list[str]:
    found = []
    for link in links(page):
        resolved = local(link)
        if resolved is None:
            continue
        path, anchor = resolved
        line_anchor = LINE_ANCHOR.fullmatch(anchor)
        if not path.exists():
            found.append(f"{link}: no such file {path}")
        elif path != ROOT and ROOT not in path.parents:
            found.append(f"{link}: outside the repository, so not on GitHub")
        elif line_anchor and path.is_file():
            problem = line_link_problem(link, path, line_anchor)
            if problem:
                found.append(f"{link} went stale: {problem}")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            found.append(f"{link}: no heading in {path.relative_to(ROOT)} has the anchor #{anchor}")
    return found


def page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


def test_the_guide_has_its_pages() -> None:
    missing = [name for name in GUIDE if not (DOCS / name).is_file()]
    assert not missing, f"docs/ lacks {', '.join(missing)}"


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_links_are_true(page: Path) -> None:
    found = problems(page)
    if found:
        pytest.fail("\n".join([f"{len(found)} stale link(s):", *found]), pytrace=False)


@pytest.mark.parametrize("model", registry.names())
def test_each_model_page_links_its_lines(model: str) -> None:
    page = DOCS / f"{model}.md"
    targets = [link.target for link in links(page)] if page.is_file() else []
    assert any(target.startswith(f"../{model}/server.py#L") for target in targets), (
        f"docs/{model}.md links to no lines of {model}/server.py"
    )


# Every benchmark figure and verdict in the docs is drawn from a committed run's JSON.
VERDICT_WORDS = re.compile(r"\b(missed|within spread|real miss|targets? (?:is |are |was |were )?met)\b", re.I)
GENERATED = re.compile(r"<!-- begin (?P<name>[^:]+):.*?<!-- end (?P=name) -->", re.DOTALL)


def test_bench_pages_agree_with_their_runs() -> None:
    stale = [
        str(path.relative_to(ROOT))
        for path, text in report.committed_pages().items()
        if path.read_text(encoding="utf-8") != text
    ]
    assert not stale, (
        f"{', '.join(stale)} disagree with their runs (docs/bench/*.json, docs/conformance.json): "
        "run python3 -m bench.report"
    )


def test_a_different_run_would_change_the_verdicts() -> None:
    """The check above can fail: one figure moved and the README's section no longer matches."""
    run = report.load(report.TARGETS_RUN)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert report.verdicts(run) in readme
    paired = next(t for t in run["targets"] if t["reference"] == "uvloop Protocol" and t["size"] == 64)
    for uvloop in (r for r in paired["runs"] if r["who"] == "reference"):
        uvloop["round_trips"] //= 2  # now epoll_mux beats it twice over
    assert report.verdicts(run) not in readme


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_no_verdict_is_written_by_hand(page: Path) -> None:
    text = GENERATED.sub("", page.read_text(encoding="utf-8"))
    typed = sorted({match.group(0) for match in VERDICT_WORDS.finditer(text)})
    assert not typed, f"{page_id(page)} judges a target by hand ({typed}): let bench.report write it"


def test_syscall_page_agrees_with_its_run() -> None:
    run = json.loads(syscalls.SAVED.read_text(encoding="utf-8"))
    assert (DOCS / "syscalls.md").read_text(encoding="utf-8") == syscalls.page(run), (
        "docs/syscalls.md disagrees with docs/syscalls.json: python3 -m docs.syscalls --render"
    )


def test_syscall_page_shows_no_count_below_zero() -> None:
    """Baseline noise can leave a count below zero: it shows as a marked 0.00, explained."""
    run = json.loads(syscalls.SAVED.read_text(encoding="utf-8"))
    run["figures"]["epoll_mux"]["others"] = -0.04
    text = syscalls.page(run)
    assert "-0.04" not in text.split("| **total**")[0], "a negative count in the table"
    assert "0.00\\*" in text and "epoll_mux's others (-0.04)" in text


def test_the_picture_is_drawn_from_the_model_list() -> None:
    """docs/waits.svg is what docs/waits.py draws now, one lane per model, in the reading order."""
    drawn = waits.svg(registry.models())
    assert (DOCS / "waits.svg").read_text(encoding="utf-8") == drawn, "stale: run python3 -m toolkit.generate"
    lanes = re.findall(r'font-family="monospace" font-weight="bold">([^<]+)<', drawn)
    assert lanes == list(registry.names())


# A measured figure, as a page would write one: a ratio (0.99×, not a load's "100 × 64 B"),
# a time in µs or ns, a time per message, a rate, a share of a core, memory per connection,
# calls or instructions per message. Configuration reads otherwise (64 KiB buffers, a 10 s
# timeout, FD_SETSIZE 1,024, 50 ms back-off) and is not matched.
NUMBER = r"(?<![\w.])(?<![≥≤<>] )(?<![≥≤<>])\d(?:[\d,.]*\d)?"  # not a bound: "≥ 90%"
MEASURED = re.compile(
    rf"{NUMBER}×"
    rf"|{NUMBER}\s?(?:µs|ns)\b"
    rf"|{NUMBER}\s?ms (?:of CPU )?per (?:echoed )?(?:message|round trip)"
    rf"|{NUMBER}\s?(?:round trips|messages|requests)(?:/s| per second)"
    rf"|{NUMBER}\s?[KMG]i?B/s"
    rf"|{NUMBER}\s?%"  # a share: of a core, of the samples, of the runs' spread
    rf"|{NUMBER}\s?[KM]iB (?:of RSS |of memory )?(?:per|a|each) connection"
    rf"|{NUMBER}\s?(?:syscalls|calls|instructions) (?:per|a) (?:echoed )?message"
)
# A table row whose first cell names a measured quantity: any figure with a unit in it is one.
MEASURED_ROW = re.compile(r"^\|\s*[^|]*(?:per (?:echoed )?(?:message|round trip|connection)|CPU|RSS)[^|]*\|")
UNIT_FIGURE = re.compile(rf"{NUMBER}\s?(?:µs|ms|KiB|MiB|%)")
# Figures that are measured, but not by a benchmark run: each line that may carry one, by
# a piece of its text. Every entry must still excuse a figure (see the test below it).
NOT_BENCH_FIGURES = {
    # Not measured but configured: nonblocking's IDLE_PASSES_SHARE, the share of a core its
    # back-off aims for while idle.
    ("docs/nonblocking.md", "[`IDLE_PASSES_SHARE`](../nonblocking/server.py"),
    ("docs/nonblocking.md", "The back-off keeps an idle server's polling near 3%"),
    ("docs/comparison.md", "where its 3% and its 50 ms come from"),
    ("docs/which-model.md", "It burns CPU while idle (held near 3% of a"),
}
RUN_PAGES = {ROOT / page for page in quotes.RUN_PAGES}
QUOTING_PAGES = sorted(
    {ROOT / "README.md", *DOCS.rglob("*.md")}
    - RUN_PAGES
    - {p for p in DOCS.rglob("*.md") if ".venv" in p.parts}
)


def typed_figures(page: Path, text: str) -> list[tuple[int, str, str]]:
    """(line number, token, line) of each measured figure outside the generated sections."""
    text = GENERATED.sub(blank_out, text)
    found = []
    for number, line in enumerate(text.split("\n"), 1):
        tokens = [match.group(0) for match in MEASURED.finditer(line)]
        if MEASURED_ROW.match(line):
            tokens += [match.group(0) for match in UNIT_FIGURE.finditer(line)]
        found += [(number, token, line) for token in dict.fromkeys(tokens)]
    return found


def allowed(page: Path, line: str) -> bool:
    return any(page == ROOT / where and text in line for where, text in NOT_BENCH_FIGURES)


@pytest.mark.parametrize("page", QUOTING_PAGES, ids=page_id)
def test_no_measured_figure_is_typed_by_hand(page: Path) -> None:
    typed = [
        f"{page_id(page)}:{number}: {token}"
        for number, token, line in typed_figures(page, page.read_text(encoding="utf-8"))
        if not allowed(page, line)
    ]
    assert not typed, (
        "measured figures typed by hand, not in a committed run: quote them in a section of "
        "bench/quotes.py, or say it without the number\n" + "\n".join(typed)
    )


def test_every_exception_still_excuses_a_figure() -> None:
    used = {
        (where, text)
        for where, text in NOT_BENCH_FIGURES
        for _, _, line in typed_figures(ROOT / where, (ROOT / where).read_text(encoding="utf-8"))
        if text in line
    }
    assert used == NOT_BENCH_FIGURES, f"exceptions that excuse nothing now: {NOT_BENCH_FIGURES - used}"


@pytest.mark.parametrize(
    ("line", "tokens"),
    [
        ("epoll_mux made 0.99× uvloop's", ["0.99×"]),
        ("took 8.4 µs and 9.1 µs", ["8.4 µs", "9.1 µs"]),
        ("at 132,857 round trips/s and 6.3 MB/s", ["132,857 round trips/s", "6.3 MB/s"]),
        ("idle, held near 3% of a core", ["3%"]),
        ("29% of the samples, runs that differ by 20-60%", ["29%", "60%"]),
        ("measured 9.3 KiB of RSS per connection", ["9.3 KiB of RSS per connection"]),
        ("2.53 syscalls per echoed message", ["2.53 syscalls per echoed message"]),
        ("| server CPU per message | 10-12 µs | 0.00% |", ["12 µs", "0.00%"]),
        ("100 × 64 B and 1,000 × 1 KiB, 64 KiB buffers, FD_SETSIZE 1,024, a 10 s timeout", []),
        ("sleeps 1-50 ms when a pass finds nothing; every 5 ms by default", []),
        ("| where owed bytes wait | one chunk, at most 64 KiB |", []),
    ],
)
def test_what_counts_as_a_measured_figure(line: str, tokens: list[str]) -> None:
    assert [token for _, token, _ in typed_figures(ROOT / "x.md", line)] == tokens


def test_every_quote_is_a_listed_section() -> None:
    begin = re.compile(r"<!-- begin (?P<name>[^:]+): generated by python3 -m bench.report")
    found = {
        (page_id(page), match.group("name"))
        for page in QUOTING_PAGES
        for match in begin.finditer(page.read_text(encoding="utf-8"))
    }
    assert found == set(quotes.SECTIONS), "sections with no renderer, or renderers with no section"


@pytest.mark.parametrize(
    "quote",
    [*quotes.SECTIONS.values(), *quotes.RUN_PAGES.values()],
    ids=[*map(str, quotes.SECTIONS), *quotes.RUN_PAGES],
)
def test_every_quote_is_headed_by_its_runs(quote: quotes.Quote) -> None:
    """Each run's command, machine and date come before the first table that shows its figures."""
    text = quotes.rendered(quote)
    first_table = next((m.start() for m in re.finditer(r"^\|", text, re.MULTILINE)), len(text))
    for path in quote.runs:
        saved = report.load(path)
        for run in saved.get("runs", [saved]):  # a study keeps several runs in one file
            for fact in (run["command"], quotes.machine_text(run), run["started"]):
                assert fact in text[:first_table], f"{path.name}'s {fact!r} does not head the quote"


def conformance_run() -> dict[str, object]:
    """A small conformance report: two models and socketserver, cases 9.1 and 10.1."""

    def result(case: str, server: str, verdict: str, *figures: dict[str, float]) -> dict[str, object]:
        variants = [{"name": f"v{n}", "outcome": verdict, "figures": f} for n, f in enumerate(figures)]
        return {"case": case, "server": server, "verdict": verdict, "reason": "", "variants": variants}

    emfile, echoed, away, rss = (
        conformance.EMFILE_CPU,
        conformance.C10K_ECHOED,
        conformance.C10K_TURNED_AWAY,
        conformance.C10K_RSS,
    )
    return {
        "command": "pytest tests/conformance --cases 9.1,10.1",
        "started": "2026-11-30T08:45:02+00:00",
        "machine": {"cpu": "AMD EPYC", "cores": 2, "kernel": "Linux 6.1", "python": "3.11.7"},
        "groups": [
            {"number": 9, "title": "Faults", "needs": "process", "summary": ""},
            {"number": 10, "title": "Scale", "needs": "lifecycle", "summary": ""},
        ],
        "cases": [
            {"id": "9.1", "group": 9, "title": "EMFILE", "timeout": 90},
            {"id": "10.1", "group": 10, "title": "C10K", "timeout": 600},
        ],
        "servers": [{"name": name} for name in ("epoll_mux", "select_mux", "socketserver")],
        "results": [
            result("9.1", "epoll_mux", "pass", {emfile: 0.1}, {emfile: 0.5}),
            result("9.1", "select_mux", "pass", {emfile: 0.0}),
            result("9.1", "socketserver", "fail", {emfile: 51.8}),
            result("10.1", "epoll_mux", "pass", {echoed: 10_000, away: 0, rss: 0.5}),
            result("10.1", "select_mux", "pass", {echoed: 1018, away: 100, rss: 0.4}),
            result("10.1", "socketserver", "n/a", {}),
        ],
    }


def row(text: str, first_cell: str) -> list[str]:
    line = next(line for line in text.splitlines() if line.startswith(f"| {first_cell} |"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_the_conformance_tables_render_each_server() -> None:
    run = conformance_run()
    columns = ["", *registry.names(), "socketserver"]
    results = quotes.conformance_results(run)
    assert results.startswith(f"From {quotes.cites(run)}")
    verdicts = dict(zip(columns, row(results, "9 Faults"), strict=True))
    assert verdicts["epoll_mux"] == "1/1 pass"
    assert verdicts["socketserver"] == "0/1 pass, 1 fail"
    assert verdicts["blocking"] == quotes.NOT_IN_RUN, "a model the run left out"
    assert row(results, "10 Scale")[-1] == "n/a"

    measured = quotes.conformance_measured(run)
    held = dict(zip(columns, row(measured, "clients echoed at once (10.1)"), strict=True))
    assert held["epoll_mux"] == "10,000"
    assert held["select_mux"] == "1,018, 100 more turned away (its cap)"
    assert held["socketserver"] == "n/a"
    rss = dict(zip(columns, row(measured, "RSS per connection, all echoed and quiet (10.1)"), strict=True))
    assert (rss["epoll_mux"], rss["select_mux"], rss["blocking"]) == ("0.5 KiB", "0.4 KiB", quotes.NOT_IN_RUN)
    cpu = dict(zip(columns, row(measured, "CPU out of descriptors (9.1)"), strict=True))
    assert cpu["epoll_mux"] == "0.5% of a core", "the higher of the case's variants"
    assert cpu["socketserver"] == "51.8% of a core (fail)"


def test_comparison_quotes_the_conformance_run() -> None:
    run = conformance_run()
    text = quotes.per_model(report.load(report.FULL_RUN), report.load(quotes.SYSCALLS_RUN), run)
    cpu = row(text, "CPU out of descriptors (case 9.1)")
    assert dict(zip(registry.names(), cpu[1:], strict=True))["epoll_mux"] == "0.5% of a core"
    assert quotes.cites(run) in text and quotes.NOT_IN_RUN in text
