"""docs/side_by_side.py: every step in order, every line of every server once, differences marked.

The pages are parsed back with html.parser, which also checks that every tag closes in order,
and compared with the servers' sources, cut into sections here independently of the renderer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest

from docs.side_by_side import STEPS, main
from toolkit import registry

ROOT = Path(__file__).resolve().parent.parent
VOID = {"meta", "br", "hr", "img", "link", "input", "wbr"}


@dataclass
class Line:
    number: int
    marks: set[str]
    text: str
    href: str


class Page(HTMLParser):
    """The table's rows: each row's step label, and per column its code lines."""

    def __init__(self) -> None:
        super().__init__()
        self.labels: list[str] = []
        self.columns: list[list[list[Line]]] = []  # row -> column -> lines
        self.text = ""  # all the page's text
        self.open: list[str] = []  # the tags open here, innermost last
        self.line: Line | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in VOID:
            self.open.append(tag)
        classes = set((dict(attrs).get("class") or "").split())
        if tag == "tr" and "tbody" in self.open:
            self.labels.append("")
            self.columns.append([])
        elif tag == "td":
            self.columns[-1].append([])
        elif tag == "div" and "line" in classes:
            self.line = Line(0, classes - {"line", "banner"}, "", "")
        elif tag == "a" and self.line is not None:
            self.line.href = dict(attrs)["href"] or ""

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open[-1] == tag, f"</{tag}> closes <{self.open[-1:]}>"
        self.open.pop()
        if tag == "div" and self.line is not None:
            self.columns[-1][-1].append(self.line)
            self.line = None

    def handle_data(self, data: str) -> None:
        self.text += data
        if self.line is not None and self.open[-1] == "a":
            self.line.number = int(data)
        elif self.line is not None:
            self.line.text += data
        elif self.open[-1:] == ["th"] and "tbody" in self.open:
            self.labels[-1] += data


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


def check_columns(out: Path, page: Page, models: tuple[str, ...]) -> None:
    """Each column holds its model's sections, in the page's rows, verbatim, linked to the file."""
    for column, model in enumerate(models):
        source = (ROOT / model / "server.py").read_text().splitlines()
        expected = sections(model)
        for label, row in zip(page.labels, page.columns, strict=True):
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
        assert f"{model} {len(source)} lines" in page.text


def marked(page: Page, column: int) -> list[Line]:
    return [line for row in page.columns for line in row[column] if line.marks]


def test_pair_marks_what_differs(tmp_path: Path) -> None:
    out, page = render(tmp_path, "selectors_mux", "epoll_mux")
    assert page.labels == list(STEPS)
    check_columns(out, page, ("selectors_mux", "epoll_mux"))
    left = [line for row in page.columns for line in row[0]]
    right = [line for row in page.columns for line in row[1]]
    same = [line for line in left + right if line.text.strip() == "del client.outbuf[:sent]"]
    assert len(same) == 2 and not any(line.marks for line in same)
    epoll_only = [line for line in right if "self.epoll" in line.text]
    assert epoll_only and all(line.marks & {"ins", "chg"} for line in epoll_only)
    assert any(line.marks & {"del", "chg"} for line in left if "self.selector" in line.text)
    assert not any(line.marks for line in left + right if not line.text.strip()), "a blank line is marked"
    assert "python -m docs.side_by_side selectors_mux epoll_mux" in page.text


def test_all_six_against_their_left_neighbours(tmp_path: Path) -> None:
    out, page = render(tmp_path, "--all")
    assert " ".join(page.labels).replace(" and ", " ").split() == list(STEPS)
    assert "read and write" in page.labels  # blocking keeps both in one section
    check_columns(out, page, registry.names())
    assert not marked(page, 0), "the first column has no left neighbour"
    assert all(marked(page, column) for column in range(1, len(registry.names())))
    assert not any(
        line.marks & {"del"} for column in range(len(registry.names())) for line in marked(page, column)
    )
    assert "left neighbour" in page.text


def test_unknown_model_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["select_mux", "kqueue_mux"])
    assert exit_.value.code == 2
    assert "unknown model 'kqueue_mux'" in capsys.readouterr().err
