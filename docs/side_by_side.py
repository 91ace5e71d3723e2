"""Servers side by side: two server.py files, step by step, on one self-contained HTML page.

One row per step (preamble, then each `# --- step ---` section in the order the files
give them, then main), one column per model, what differs marked. Code and prose are
compared apart: a changed line of code is painted, while a comment or docstring that
differs gets only a bar beside its line number, so a reworded docstring does not paint
its block. The model's own name (`logging.getLogger("epoll_mux")`) counts as the same
in both. --all stacks every model against the one before it in the reading order, one
pair after another, each as wide as a pair alone. Run from the repository root:

    python3 -m docs.side_by_side select_mux epoll_mux  # -> docs/side_by_side/select_mux-epoll_mux.html
    python3 -m docs.side_by_side --all                 # every neighbour pair -> docs/side_by_side/all.html
    python3 -m docs.side_by_side select_mux epoll_mux -o out.html
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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from toolkit import registry
from toolkit.registry import ROOT

# The reading order: each model's docstring says what it changes from the one before.
MODELS = registry.names()
BANNER = re.compile(r"^\s*# --- (\w+)(?: and (\w+))?")  # "# --- read ---" or "# --- read and write: ..."
STATEMENT_START = {tokenize.NEWLINE, tokenize.NL, tokenize.INDENT, tokenize.DEDENT}
OWN_NAME = "\0model\0"  # stands for the model's own name while lines are compared
Span = tuple[int, int]  # columns [start, end) of one line

CSS = """
body { margin: 0 1em 2em; font: 14px/1.45 system-ui, sans-serif; color: #1f2328; background: #fff; }
header p { margin: .3em 0; max-width: 80em; } .key { padding: 0 .4em; white-space: nowrap; }
nav ol { margin: .3em 0; padding-left: 1.6em; columns: 3 16em; } nav li { padding: .1em 0; }
h2 { margin: 1.6em 0 .4em; font-size: 1.15em; } h2 a { color: inherit; }
table { width: 100%; table-layout: fixed; border-collapse: separate; border-spacing: 0; }
thead th { position: sticky; top: 0; z-index: 1; padding: .4em; text-align: left; background: #eaeef2;
  border-bottom: 2px solid #8c959f; } thead small { font-weight: normal; color: #57606a; }
th.step { width: 4.8em; padding: .4em; text-align: left; vertical-align: top; background: #f6f8fa; }
tbody th, tbody td { border-top: 2px solid #afb8c1; }
td { padding: .3em .3em .6em 0; vertical-align: top; border-left: 1px solid #d0d7de; }
.line { display: flex; font: 12.5px/1.4 ui-monospace, "DejaVu Sans Mono", monospace; }
.line a { flex: none; width: 3.2em; padding-right: .6em; text-align: right; color: #8c959f;
  text-decoration: none; user-select: none; border-right: 3px solid transparent; margin-right: .3em; }
.line code { flex: 1; min-width: 0; font: inherit; white-space: pre-wrap; overflow-wrap: anywhere;
  padding-left: var(--hang); text-indent: calc(-1 * var(--hang)); }  /* a wrapped line hangs */
.banner code { white-space: pre; overflow: hidden; text-overflow: ellipsis; }  /* no wrapped rules */
.del { background: #ffd7d5; } .ins { background: #ccf5d6; } .chg { background: #fff1b3; }
.note a { border-right-color: #9a6700; }  /* prose differs: a bar, not paint */
.key.note { border-left: 3px solid #9a6700; }
.c { color: #6e7781; font-style: italic; }
"""


@dataclass
class Server:
    model: str
    path: Path
    lines: list[str]
    sections: dict[tuple[str, ...], range]  # the steps a section holds -> its line indices
    muted: dict[int, list[Span]]  # line index -> where its comments and docstrings are
    code: list[str]  # per line: the code without comments and docstrings, as compared
    prose: list[str]  # per line: its comments and docstring text, as compared


def load(model: str) -> Server:
    path = ROOT / model / "server.py"
    source = path.read_text()
    lines = source.splitlines()
    muted = muted_spans(source, lines)
    code, prose = [], []
    for i, line in enumerate(lines):
        spans = muted.get(i, [])
        blanked = list(line)
        for start, end in spans:
            blanked[start:end] = " " * (end - start)
        code.append(compared("".join(blanked), model))
        prose.append(compared(" ".join(line[start:end] for start, end in spans), model))
    return Server(model, path, lines, split_sections(lines), muted, code, prose)


def compared(text: str, model: str) -> str:
    """A line as it is compared: no indentation, runs of spaces as one, the model's own name neutral."""
    return " ".join(text.replace(model, OWN_NAME).split())


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


def steps(servers: list[Server]) -> list[str]:
    """Every step the servers name, in the order the first gives them; a step only a later
    server has goes right after the step it follows there."""
    order: list[str] = []
    for server in servers:
        previous = None
        for step in itertools.chain.from_iterable(server.sections):
            if step not in order:
                order.insert(order.index(previous) + 1 if previous else 0, step)
            previous = step
    return order


def page_rows(servers: list[Server]) -> list[tuple[str, ...]]:
    """One row per step, but steps that one server keeps in one section ("read and write") share a row."""
    rows: list[tuple[str, ...]] = []
    for step in steps(servers):
        if rows and any(rows[-1][-1] in held and step in held for s in servers for held in s.sections):
            rows[-1] += (step,)
        else:
            rows.append((step,))
    return rows


def row_lines(server: Server, row: tuple[str, ...]) -> list[int]:
    return [i for step in row for held, span in server.sections.items() if held[0] == step for i in span]


def changes(left: list[str], right: list[str]) -> Iterator[tuple[str, list[int], list[int]]]:
    """difflib's opcodes over the non-empty entries, as positions in the full lists."""
    left_at = [k for k, text in enumerate(left) if text]
    right_at = [k for k, text in enumerate(right) if text]
    matcher = difflib.SequenceMatcher(None, [left[k] for k in left_at], [right[k] for k in right_at], False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            yield tag, left_at[i1:i2], right_at[j1:j2]


def marks(left: Server, left_lines: list[int], right: Server, right_lines: list[int]) -> list[list[set[str]]]:
    """Each line's marks, left then right. Code: del, ins or chg (in both, changed); prose: note."""
    found: list[list[set[str]]] = [[set() for _ in left_lines], [set() for _ in right_lines]]
    code = changes([left.code[i] for i in left_lines], [right.code[i] for i in right_lines])
    for tag, left_at, right_at in code:
        for k in left_at:
            found[0][k].add("chg" if tag == "replace" else "del")
        for k in right_at:
            found[1][k].add("chg" if tag == "replace" else "ins")
    prose = changes([left.prose[i] for i in left_lines], [right.prose[i] for i in right_lines])
    for _, left_at, right_at in prose:
        for side, at in ((0, left_at), (1, right_at)):
            for k in at:
                found[side][k].add("note")
    return found


def code_html(text: str, muted: list[Span]) -> str:
    parts: list[str] = []
    column = 0
    for start, end in sorted(muted):
        parts += [html.escape(text[column:start]), f'<span class="c">{html.escape(text[start:end])}</span>']
        column = end
    return "".join([*parts, html.escape(text[column:])])


def cell(server: Server, indices: list[int], line_marks: list[set[str]], link: str) -> str:
    rows = []
    for i, mark in zip(indices, line_marks, strict=True):
        text = server.lines[i]
        banner = {"banner"} if BANNER.match(text) else set()
        css = " ".join(["line", *sorted(mark | banner)])
        code = code_html(text, server.muted.get(i, []))
        hang = len(text) - len(text.lstrip()) + 4  # continuation lines sit deeper than the line's indent
        number = f'<a href="{link}#L{i + 1}">{i + 1}</a>'
        rows.append(f'<div class="{css}">{number}<code style="--hang:{hang}ch">{code}</code></div>')
    return "<td>" + "".join(rows) + "</td>"


def table_row(pair: list[Server], row: tuple[str, ...], links: list[str]) -> str:
    indices = [row_lines(server, row) for server in pair]
    both = marks(pair[0], indices[0], pair[1], indices[1])
    cells = "".join(map(cell, pair, indices, both, links))
    anchor = "-".join([*(s.model for s in pair), *row])
    return f'<tr id="{anchor}"><th class="step">{" and ".join(row)}</th>{cells}</tr>'


def pair_table(pair: list[Server], out: Path) -> str:
    links = [html.escape(Path(os.path.relpath(s.path, out.parent)).as_posix()) for s in pair]
    heads = "".join(
        f'<th><a href="{link}">{html.escape(s.model)}</a> <small>{len(s.lines)} lines</small></th>'
        for s, link in zip(pair, links, strict=True)
    )
    body = "".join(table_row(pair, row, links) for row in page_rows(pair))
    return f'<table><thead><tr><th class="step">step</th>{heads}</tr></thead><tbody>{body}</tbody></table>'


def legend(left: str, right: str) -> str:
    return (
        f'<span class="key del">only in {left}</span> <span class="key ins">only in {right}</span> '
        '<span class="key chg">changed: differs in both</span>; unmarked: the same in both. '
        '<span class="key note">a bar beside a line number</span>: its comment or docstring differs '
        "(prose is compared apart from code, and never painted)."
    )


def render(servers: list[Server], out: Path, command: str, stacked: bool) -> str:
    """One pair, or (stacked) each server against the one before it, one table per pair."""
    pairs = [list(pair) for pair in itertools.pairwise(servers)]
    readme = Path(os.path.relpath(ROOT / "README.md", out.parent)).as_posix()
    names = [" → ".join(html.escape(s.model) for s in pair) for pair in pairs]
    anchors = ["-".join(s.model for s in pair) for pair in pairs]
    if stacked:
        title = f"{len(servers)} models, each against the one before"
        keys = legend("the earlier model", "the later model")
        nav = "".join(f'<li><a href="#{a}">{n}</a></li>' for a, n in zip(anchors, names, strict=True))
        tables = "".join(
            f'<section><h2 id="{a}"><a href="#{a}">{n}</a></h2>{pair_table(pair, out)}</section>'
            for a, n, pair in zip(anchors, names, pairs, strict=True)
        )
        head = f"<nav>In the reading order; jump to a pair:<ol>{nav}</ol></nav>"
    else:
        title, keys, head = names[0], legend(*(html.escape(s.model) for s in servers)), ""
        tables = pair_table(pairs[0], out)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}: side by side</title><style>{CSS}</style></head>
<body><header>
<h1>{title}</h1>
<p>Each row is one step of both servers; lines are compared without their indentation, and the
model's own name counts as the same. {keys} <span class="c">Grey italics: comments and
docstrings.</span> A line number links to that line.</p>
<p>Made by <code>{html.escape(command)}</code>. The models: <a href="{readme}">README</a>.</p>
{head}</header>
{tables}
</body></html>
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m docs.side_by_side", description="Servers side by side.")
    parser.add_argument("models", nargs="*", metavar="MODEL", help=f"two of: {', '.join(MODELS)}")
    parser.add_argument("--all", action="store_true", help="every model against the one before it")
    parser.add_argument("-o", "--output", type=Path, help="the HTML file (default: docs/side_by_side/...)")
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    for model in args.models:
        if model not in MODELS:
            parser.error(f"unknown model {model!r} (choose from {', '.join(MODELS)})")
    if len(args.models) != (0 if args.all else 2):
        parser.error("name two models, or give --all")
    if len(set(args.models)) != len(args.models):
        parser.error(f"{args.models[0]} against itself shows nothing: name two different models")
    models = MODELS if args.all else tuple(args.models)
    name = "all" if args.all else "-".join(models)
    out = (args.output or ROOT / "docs" / "side_by_side" / f"{name}.html").resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    command = shlex.join(["python3", "-m", "docs.side_by_side", *argv])
    out.write_text(render([load(model) for model in models], out, command, stacked=args.all))
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
