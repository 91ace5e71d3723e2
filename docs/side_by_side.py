"""Servers side by side: two (or all six) server.py files on one self-contained HTML page.

One row per step (preamble, listen, wait, accept, read, write, close, stop, main), one column
per model, the lines that differ marked: two models against each other, or with --all each
column against its left neighbour, in the reading order. Run from the repository root:

    python -m docs.side_by_side select_mux epoll_mux   # -> docs/side_by_side/select_mux-epoll_mux.html
    python -m docs.side_by_side --all                  # all six -> docs/side_by_side/all.html
    python -m docs.side_by_side select_mux epoll_mux -o out.html
"""

from __future__ import annotations

import argparse
import difflib
import html
import io
import itertools
import os
import re
import shlex
import sys
import tokenize
from dataclasses import dataclass
from pathlib import Path

from toolkit import registry
from toolkit.registry import ROOT

# The reading order: each model's docstring says what it changes from the one before.
MODELS = registry.names()
STEPS = ("preamble", *registry.SECTIONS, "main")
BANNER = re.compile(r"^\s*# --- (\w+)(?: and (\w+))?")  # "# --- read ---" or "# --- read and write: ..."
STATEMENT_START = {tokenize.NEWLINE, tokenize.NL, tokenize.INDENT, tokenize.DEDENT}
Span = tuple[int, int]  # columns [start, end) of one line

CSS = """
body { margin: 0 1em 2em; font: 14px/1.45 system-ui, sans-serif; color: #1f2328; background: #fff; }
header p { margin: .3em 0; max-width: 80em; } .key { padding: 0 .4em; white-space: nowrap; }
table { width: 100%; table-layout: fixed; border-collapse: separate; border-spacing: 0; }
thead th { position: sticky; top: 0; z-index: 1; padding: .4em; text-align: left; background: #eaeef2;
  border-bottom: 2px solid #8c959f; } thead small { font-weight: normal; color: #57606a; }
th.step { width: 4.8em; padding: .4em; text-align: left; vertical-align: top; background: #f6f8fa; }
tbody th, tbody td { border-top: 2px solid #afb8c1; }
td { padding: .3em .3em .6em 0; vertical-align: top; border-left: 1px solid #d0d7de; }
.line { display: flex; font: 12.5px/1.4 ui-monospace, "DejaVu Sans Mono", monospace; }  /* a pair */
.line a { flex: none; width: 3.2em; padding-right: .6em; text-align: right; color: #8c959f;
  text-decoration: none; user-select: none; }
.all .line { font-size: 10.5px; } .all .line a { width: 2.4em; padding-right: .4em; }  /* six columns */
.line code { flex: 1; min-width: 0; font: inherit; white-space: pre-wrap; overflow-wrap: anywhere;
  padding-left: var(--hang); text-indent: calc(-1 * var(--hang)); }  /* a wrapped line hangs */
.banner code { white-space: pre; overflow: hidden; text-overflow: ellipsis; }  /* no wrapped rules */
.del { background: #ffd7d5; } .ins { background: #ccf5d6; } .chg { background: #fff1b3; }
.c { color: #6e7781; font-style: italic; }
"""


@dataclass
class Server:
    model: str
    path: Path
    lines: list[str]
    sections: dict[tuple[str, ...], range]  # the steps a section holds -> its line indices
    muted: dict[int, list[Span]]  # line index -> where its comments and docstrings are


def load(model: str) -> Server:
    path = ROOT / model / "server.py"
    source = path.read_text()
    lines = source.splitlines()
    return Server(model, path, lines, split_sections(lines), muted_spans(source, lines))


def split_sections(lines: list[str]) -> dict[tuple[str, ...], range]:
    """Preamble up to the first banner, one section per banner, then main: the first top-level line on."""
    starts: list[tuple[tuple[str, ...], int]] = [(("preamble",), 0)]
    starts += [
        (tuple(s for s in m.groups() if s), i) for i, line in enumerate(lines) if (m := BANNER.match(line))
    ]
    after_last = range(starts[-1][1] + 1, len(lines))
    starts.append((("main",), next((i for i in after_last if lines[i][:1].strip()), len(lines))))
    ends = [start for _, start in starts[1:]] + [len(lines)]
    return {steps: range(start, end) for (steps, start), end in zip(starts, ends, strict=True)}


def muted_spans(source: str, lines: list[str]) -> dict[int, list[Span]]:
    """Comments, and strings that stand alone as a statement (docstrings), per line."""
    spans: dict[int, list[Span]] = {}
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    previous = tokenize.NEWLINE
    for token, following in itertools.pairwise(tokens):
        alone = previous in STATEMENT_START and following.type == tokenize.NEWLINE
        if token.type == tokenize.COMMENT or (token.type == tokenize.STRING and alone):
            (first, start), (last, end) = token.start, token.end
            for row in range(first, last + 1):
                span = (start if row == first else 0, end if row == last else len(lines[row - 1]))
                spans.setdefault(row - 1, []).append(span)
        previous = token.type
    return spans


def page_rows(servers: list[Server]) -> list[tuple[str, ...]]:
    """One row per step, but steps that one server keeps in one section ("read and write") share a row."""
    rows: list[tuple[str, ...]] = []
    for step in STEPS:
        if rows and any(rows[-1][-1] in held and step in held for s in servers for held in s.sections):
            rows[-1] += (step,)
        else:
            rows.append((step,))
    return rows


def row_lines(server: Server, row: tuple[str, ...]) -> list[int]:
    return [i for step in row for held, span in server.sections.items() if held[0] == step for i in span]


def marks(left: list[str], right: list[str]) -> tuple[list[str], list[str]]:
    """Each line's mark, comparing lines without their indentation: del, ins, chg, or "" if in both."""
    left_marks, right_marks = [""] * len(left), [""] * len(right)
    stripped = ([s.strip() for s in left], [s.strip() for s in right])
    matcher = difflib.SequenceMatcher(None, *stripped, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            left_marks[i1:i2] = ["chg" if tag == "replace" else "del"] * (i2 - i1)
            right_marks[j1:j2] = ["chg" if tag == "replace" else "ins"] * (j2 - j1)
    return left_marks, right_marks


def code_html(text: str, muted: list[Span]) -> str:
    parts: list[str] = []
    column = 0
    for start, end in sorted(muted):
        parts += [html.escape(text[column:start]), f'<span class="c">{html.escape(text[start:end])}</span>']
        column = end
    return "".join([*parts, html.escape(text[column:])])


def cell(server: Server, indices: list[int], line_marks: list[str], link: str) -> str:
    rows = []
    for i, mark in zip(indices, line_marks, strict=True):
        text = server.lines[i]
        banner = "banner" if BANNER.match(text) else ""
        css = " ".join(filter(None, ["line", mark if text.strip() else "", banner]))  # blank: never marked
        code = code_html(text, server.muted.get(i, []))
        hang = len(text) - len(text.lstrip()) + 4  # continuation lines sit deeper than the line's indent
        number = f'<a href="{link}#L{i + 1}">{i + 1}</a>'
        rows.append(f'<div class="{css}">{number}<code style="--hang:{hang}ch">{code}</code></div>')
    return "<td>" + "".join(rows) + "</td>"


def table_row(servers: list[Server], row: tuple[str, ...], links: list[str]) -> str:
    indices = [row_lines(server, row) for server in servers]
    texts = [[server.lines[i] for i in lines] for server, lines in zip(servers, indices, strict=True)]
    pairs = [marks(left, right) for left, right in itertools.pairwise(texts)]
    first = pairs[0][0] if len(servers) == 2 else [""] * len(texts[0])  # a pair: mark the left too
    column_marks = [first] + [right for _, right in pairs]
    cells = map(cell, servers, indices, column_marks, links)
    return f'<tr id="{"-".join(row)}"><th class="step">{" and ".join(row)}</th>{"".join(cells)}</tr>'


def legend(servers: list[Server]) -> str:
    if len(servers) == 2:
        left, right = (html.escape(s.model) for s in servers)
        return (
            f'<span class="key del">only in {left}</span> <span class="key ins">only in {right}</span> '
            '<span class="key chg">changed: differs in both</span>; unmarked: the same in both.'
        )
    return (
        f"Each column is compared with its left neighbour, in the reading order {' → '.join(MODELS)}: "
        '<span class="key ins">new in this column</span> <span class="key chg">changed from the left</span>; '
        "unmarked: in the left neighbour too. The first column is unmarked."
    )


def render(servers: list[Server], out: Path, command: str) -> str:
    links = [html.escape(Path(os.path.relpath(s.path, out.parent)).as_posix()) for s in servers]
    readme = Path(os.path.relpath(ROOT / "README.md", out.parent)).as_posix()
    heads = "".join(
        f'<th><a href="{link}">{html.escape(s.model)}</a> <small>{len(s.lines)} lines</small></th>'
        for s, link in zip(servers, links, strict=True)
    )
    body = "".join(table_row(servers, row, links) for row in page_rows(servers))
    title = html.escape(" | ".join(s.model for s in servers))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}: side by side</title><style>{CSS}</style></head>
<body{"" if len(servers) == 2 else ' class="all"'}><header>
<h1>{title}</h1>
<p>Each row is one step of every server; lines are compared without their indentation. {legend(servers)}
<span class="c">Grey italics: comments and docstrings.</span> A line number links to that line.</p>
<p>Made by <code>{html.escape(command)}</code>. The models: <a href="{readme}">README</a>.</p>
</header>
<table><thead><tr><th class="step">step</th>{heads}</tr></thead>
<tbody>{body}</tbody></table>
</body></html>
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m docs.side_by_side", description="Servers side by side.")
    parser.add_argument("models", nargs="*", metavar="MODEL", help=f"two of: {', '.join(MODELS)}")
    parser.add_argument("--all", action="store_true", help="all six, in the reading order")
    parser.add_argument("-o", "--output", type=Path, help="the HTML file (default: docs/side_by_side/...)")
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    for model in args.models:
        if model not in MODELS:
            parser.error(f"unknown model {model!r} (choose from {', '.join(MODELS)})")
    if len(args.models) != (0 if args.all else 2):
        parser.error("name two models, or give --all")
    models = MODELS if args.all else tuple(args.models)
    name = "all" if args.all else "-".join(models)
    out = (args.output or ROOT / "docs" / "side_by_side" / f"{name}.html").resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    command = shlex.join(["python", "-m", "docs.side_by_side", *argv])
    out.write_text(render([load(model) for model in models], out, command))
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
