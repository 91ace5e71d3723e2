"""Rewrite every section that lists the models from the registry (their declarations).

    python3 -m toolkit.generate           rewrite the sections that are stale
    python3 -m toolkit.generate --check   name the stale ones and exit 1 (tests/test_generated.py)

A generated section lies between a `BEGIN generated: NAME` line and an `END generated: NAME`
line, in the file's own comment syntax (`<!-- -->` in Markdown, `#` in tox.ini and
pyproject.toml); whatever lies between is rewritten. A new model is then one new folder:
this command adds it to the README's table, the reading order, the comparison page's
columns, tox's envs and the console scripts. Standard library only.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from docs import waits
from toolkit import registry
from toolkit.registry import ROOT

COMMAND = "python3 -m toolkit.generate"
FILES = ("README.md", "docs/README.md", "docs/comparison.md", "tox.ini", "pyproject.toml")
MARKER = re.compile(
    r"^(?P<indent>\s*)(?:<!-- |# )(?P<which>BEGIN|END) generated: (?P<name>[\w ]+?)(?: \(| -->|$)"
)
# tox runs each model on every Python named here; it skips the ones this machine lacks.
TOX_PYTHONS = "py3{10,11,12,13}"


def models_table(_: list[str]) -> list[str]:
    """README.md: each model, how it waits, what it costs."""
    rows = [[f"[`{m.name}`]({m.name}/server.py)", m.waits, m.costs] for m in registry.models()]
    return markdown_table(["model", "how it waits", "what it costs"], rows)


def reading_order(_: list[str]) -> list[str]:
    """docs/README.md: the order to read them in, and what each changes from the one it builds on."""
    rows = [
        [
            str(m.order),
            f"[`{m.name}`](../{m.name}/server.py)",
            f"[{m.name}.md]({m.name}.md)",
            m.family.value,
            f"`{m.builds_on}`" if m.builds_on else "",
            m.changes,
        ]
        for m in registry.models()
    ]
    return markdown_table(["", "model", "page", "family", "builds on", "what it changes"], rows)


def comparison_columns(current: list[str]) -> list[str]:
    """docs/comparison.md: one column per model, in the reading order. The cells are kept,
    found by their column's model (a new model's start empty), but for the code-size
    row, which is counted here."""
    header, _, *body = [cells(line) for line in current if line.startswith("|")]
    columns = [re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", cell) for cell in header]  # [name](name.md) -> name
    names = registry.names()
    rows = []
    for row in body:
        kept = dict(zip(columns[1:], row[1:], strict=False))
        if row[0].startswith("code size"):
            kept = {name: f"[{lines(name)}](../{name}/server.py)" for name in names}
        rows.append([row[0], *(kept.get(name, "") for name in names)])
    return markdown_table(["", *(f"[{name}]({name}.md)" for name in names)], rows)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A table set off by blank lines: a table row right beside a marker comment is not
    safe in every renderer."""
    return ["", table_row(header), "|---" * len(header) + "|", *map(table_row, rows), ""]


def table_row(row: Sequence[str]) -> str:
    r"""One row; a `|` in a cell is escaped (`\|`), or it would end the cell."""
    escaped = [re.sub(r"(?<!\\)\|", r"\|", cell) for cell in row]
    return "|" + "|".join(f" {cell} " if cell else " " for cell in escaped) + "|"


def cells(row: str) -> list[str]:
    """A Markdown table row's cells, split on the pipes that are not escaped."""
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", row.strip()[1:-1])]


def lines(model: str) -> int:
    """Lines in the model's server.py, as `wc -l` counts them."""
    return (ROOT / model / "server.py").read_text(encoding="utf-8").count("\n")


def tox_envs(_: list[str]) -> list[str]:
    """tox.ini's env_list and the report's depends: every model on every Python."""
    return [f"{TOX_PYTHONS}-{{{','.join(registry.names())}}}"]


def tox_models(_: list[str]) -> list[str]:
    """tox.ini's set_env: the model a `py3X-MODEL` env tests."""
    return [f"{name}: MODEL = {name}" for name in registry.names()]


def scripts(_: list[str]) -> list[str]:
    """pyproject.toml's console scripts: io-select-mux runs select_mux (io-asyncio, not io-asyncio-io)."""
    return [
        f'io-{name.removesuffix("_io").replace("_", "-")} = "{name}.server:main"' for name in registry.names()
    ]


SECTIONS: dict[str, Callable[[list[str]], list[str]]] = {
    "models": models_table,
    "reading order": reading_order,
    "comparison columns": comparison_columns,
    "tox envs": tox_envs,
    "tox models": tox_models,
    "scripts": scripts,
}


def regenerate(text: str, where: str) -> tuple[str, set[str]]:
    """The text with every generated section rewritten, and the names of the sections found."""
    out: list[str] = []
    found: set[str] = set()
    section: list[str] | None = None  # the current section's old lines, while inside one
    for number, line in enumerate(text.splitlines(), 1):
        marker = MARKER.match(line)
        if marker is None:
            if section is None:
                out.append(line)
            else:
                section.append(line)
            continue
        name = marker["name"]
        if name not in SECTIONS:
            raise ValueError(f"{where}:{number}: no generated section is called {name!r}")
        if marker["which"] == "BEGIN":
            if section is not None:
                raise ValueError(f"{where}:{number}: section {name!r} begins inside another")
            out.append(line)
            section = []
        else:
            if section is None:
                raise ValueError(f"{where}:{number}: section {name!r} ends but never began")
            out += [marker["indent"] + generated for generated in SECTIONS[name](section)]
            out.append(line)
            found.add(name)
            section = None
    if section is not None:
        raise ValueError(f"{where}: a generated section never ends")
    return "\n".join(out) + "\n", found


def stale(root: Path = ROOT) -> dict[Path, str]:
    """Each file whose generated sections are out of date, with its text as it should be."""
    changed, found = {}, set()
    for name in FILES:
        path = root / name
        text = path.read_text(encoding="utf-8")
        fresh, sections = regenerate(text, name)
        found |= sections
        if fresh != text:
            changed[path] = fresh
    if missing := set(SECTIONS) - found:
        raise ValueError(f"no file has the generated section(s) {', '.join(sorted(missing))}")
    picture = root / "docs/waits.svg"  # a lane per model, drawn from the declarations
    if picture.read_text(encoding="utf-8") != (drawn := waits.svg(registry.models())):
        changed[picture] = drawn
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--check", action="store_true", help="rewrite nothing; exit 1 if a section is stale")
    check = parser.parse_args(argv).check
    changed = stale()
    for path, text in changed.items():
        if not check:
            path.write_text(text, encoding="utf-8")
        print(f"{'stale' if check else 'rewrote'}: {path.relative_to(ROOT)}")
    if check and changed:
        print(f"run: {COMMAND}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
