"""docs/side_by_side.py: every step in order, every line of every server once, differences marked.

The pages are parsed back with html.parser, which also checks that every tag closes in order,
and compared with the servers' sources, cut into sections here independently of the renderer.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest

from docs.side_by_side import main
from toolkit import registry

ROOT = Path(__file__).resolve().parent.parent
VOID = {"meta", "br", "hr", "img", "link", "input", "wbr"}


CODE_MARKS = {"del", "ins", "chg"}  # a line of code that differs; "note": its prose differs


@dataclass
class Line:
    number: int
    marks: set[str]
    text: str
    href: str


@dataclass
class Table:
    """One pair: each row's step label, and per column its code lines."""

    labels: list[str] = field(default_factory=list)
    columns: list[list[list[Line]]] = field(default_factory=list)  # row -> column -> lines


class Page(HTMLParser):
    """The page's tables, its text, and its links to anchors on itself."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[Table] = []
        self.text = ""  # all the page's text
        self.ids: list[str] = []
        self.hrefs: list[str] = []
        self.open: list[str] = []  # the tags open here, innermost last
        self.line: Line | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in VOID:
            self.open.append(tag)
        attributes = dict(attrs)
        classes = set((attributes.get("class") or "").split())
        self.ids += [attributes["id"] or ""] if "id" in attributes else []
        if tag == "table":
            self.tables.append(Table())
        elif tag == "tr" and "tbody" in self.open:
            self.tables[-1].labels.append("")
            self.tables[-1].columns.append([])
        elif tag == "td":
            self.tables[-1].columns[-1].append([])
        elif tag == "div" and "line" in classes:
            self.line = Line(0, classes - {"line", "banner"}, "", "")
        elif tag == "a" and self.line is not None:
            self.line.href = attributes["href"] or ""
        elif tag == "a":
            self.hrefs.append(attributes.get("href") or "")

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open[-1] == tag, f"</{tag}> closes <{self.open[-1:]}>"
        self.open.pop()
        if tag == "div" and self.line is not None:
            self.tables[-1].columns[-1][-1].append(self.line)
            self.line = None

    def handle_data(self, data: str) -> None:
        self.text += data
        if self.line is not None and self.open[-1] == "a":
            self.line.number = int(data)
        elif self.line is not None:
            self.line.text += data
        elif self.open[-1:] == ["th"] and "tbody" in self.open:
            self.tables[-1].labels[-1] += data


def render(tmp_path: Path, *args: str) -> tuple[Path, Page]:
    out = tmp_path / "page.html"
    assert main([*args, "-o", str(out)]) == 0
    raw = out.read_text()
    # html.parser forgives a bare "<" or "&"; a browser may not: all text must be escaped.
    bare = re.search(r"<(?![a-z/!])|&(?!(amp|lt|gt|quot|#x27);)", raw, re.IGNORECASE)
    assert bare is None, f"unescaped: {raw[bare.start() - 30 : bare.end() + 30]!r}"
    page = Page()
    page.feed(raw)
    page.close()
    assert page.open == [], f"never closed: {page.open}"
    return out, page


def sections(model: str) -> dict[str, list[int]]:
    """Line numbers per step: banner to banner, the preamble before them, main from `def main(`."""
    lines = (ROOT / model / "server.py").read_text().splitlines()
    starts = {"preamble": 1}
    for number, line in enumerate(lines, 1):
        if banner := re.match(r"\s*# --- (\w+( and \w+)?)", line):
            starts[banner[1]] = number
        elif line.startswith("def main("):
            starts["main"] = number
    ordered = sorted(starts.items(), key=lambda item: item[1])
    ends = [start for _, start in ordered[1:]] + [len(lines) + 1]
    return {step: list(range(start, end)) for (step, start), end in zip(ordered, ends, strict=True)}


def steps(model: str) -> list[str]:
    """The model's steps in the order its file gives them, "read and write" as two."""
    return " ".join(sections(model)).replace(" and ", " ").split()


def check_columns(out: Path, table: Table, models: tuple[str, ...]) -> None:
    """Each column holds its model's sections, in the table's rows, verbatim, linked to the file."""
    for column, model in enumerate(models):
        source = (ROOT / model / "server.py").read_text().splitlines()
        expected = sections(model)
        for label, row in zip(table.labels, table.columns, strict=True):
            steps = label.split(" and ")
            wanted = [
                n for step, numbers in expected.items() if step.split(" and ")[0] in steps for n in numbers
            ]
            assert [line.number for line in row[column]] == wanted, (model, label)
            for line in row[column]:
                assert line.text == source[line.number - 1]
                path, anchor = line.href.split("#")
                assert (out.parent / path).resolve() == ROOT / model / "server.py"
                assert anchor == f"L{line.number}"


def lines(table: Table, column: int) -> list[Line]:
    return [line for row in table.columns for line in row[column]]


def test_pair_marks_what_differs(tmp_path: Path) -> None:
    out, page = render(tmp_path, "selectors_mux", "epoll_mux")
    [table] = page.tables
    assert " ".join(table.labels).replace(" and ", " ").split() == steps("selectors_mux")
    check_columns(out, table, ("selectors_mux", "epoll_mux"))
    left, right = lines(table, 0), lines(table, 1)
    same = [line for line in left + right if line.text.strip() == "del client.outbuf[:sent]"]
    assert len(same) == 2 and not any(line.marks for line in same)
    epoll_only = [line for line in right if "self.epoll" in line.text]
    assert epoll_only and all(line.marks & {"ins", "chg"} for line in epoll_only)
    assert any(line.marks & {"del", "chg"} for line in left if "self.selector" in line.text)
    assert not any(line.marks for line in left + right if not line.text.strip()), "a blank line is marked"
    assert "python3 -m docs.side_by_side selectors_mux epoll_mux" in page.text
    for model in ("selectors_mux", "epoll_mux"):
        assert f"{model} {len((ROOT / model / 'server.py').read_text().splitlines())} lines" in page.text


def test_prose_is_compared_apart_from_code(tmp_path: Path) -> None:
    """The docstrings differ throughout: they get a note, never a code mark, and the code
    after them lines up; a line that differs only by the model's own name is unmarked."""
    _, page = render(tmp_path, "selectors_mux", "epoll_mux")
    [table] = page.tables
    preamble = table.columns[table.labels.index("preamble")]
    for column in (0, 1):
        docstring = preamble[column][
            : next(i for i, line in enumerate(preamble[column]) if "import" in line.text)
        ]
        prose = [line for line in docstring if line.text.strip()]
        assert prose and all(line.marks == {"note"} for line in prose if line.text.strip() != '"""'), prose
        logger = [line for line in preamble[column] if "logging.getLogger(" in line.text]
        assert len(logger) == 1 and not logger[0].marks, logger
        annotations = [line for line in preamble[column] if "from __future__" in line.text]
        assert not annotations[0].marks
    # A comment only one side has, on a line of code both have, marks the prose only.
    _, page = render(tmp_path, "blocking", "nonblocking")
    [table] = page.tables
    blocking, nonblocking = (
        [line for line in lines(table, column) if "self.listener = listen(self.config)" in line.text]
        for column in (0, 1)
    )
    assert "#" in blocking[0].text and "#" not in nonblocking[0].text
    assert (blocking[0].marks, nonblocking[0].marks) == ({"note"}, set())


def test_all_stacks_each_model_against_the_one_before(tmp_path: Path) -> None:
    out, page = render(tmp_path, "--all")
    pairs = list(itertools.pairwise(registry.names()))
    assert len(page.tables) == len(pairs)
    for table, pair in zip(page.tables, pairs, strict=True):
        check_columns(out, table, pair)
        assert any(line.marks & CODE_MARKS for line in lines(table, 1)), f"{pair}: nothing marked"
    anchors = ["-".join(pair) for pair in pairs]
    assert all(anchor in page.ids and f"#{anchor}" in page.hrefs for anchor in anchors), (
        "a pair is not linked"
    )
    assert len(set(page.ids)) == len(page.ids), "an id is used twice"


@pytest.mark.parametrize(
    ("models", "message"),
    [
        (["select_mux", "kqueue_mux"], "unknown model 'kqueue_mux'"),
        (["select_mux", "select_mux"], "select_mux against itself"),
        (["select_mux"], "name two models"),
    ],
)
def test_a_wrong_choice_is_a_usage_error(
    models: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(models)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err
