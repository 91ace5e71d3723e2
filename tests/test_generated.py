"""The sections generated from the registry (python3 -m toolkit.generate) are up to date:
the README's models table, the reading order, the comparison page's columns and
code-size row, tox's envs and the console scripts."""

from __future__ import annotations

from toolkit import generate, registry
from toolkit.registry import ROOT


def test_generated_sections_are_fresh() -> None:
    stale = [str(path.relative_to(ROOT)) for path in generate.stale()]
    assert not stale, f"stale generated sections in {', '.join(stale)}: run {generate.COMMAND}"


def test_a_section_is_rewritten_from_the_registry() -> None:
    text = "x\n<!-- BEGIN generated: models (hand edited) -->\n| stale |\n<!-- END generated: models -->\ny\n"
    fresh, found = generate.regenerate(text, "page.md")
    assert found == {"models"}
    assert "| stale |" not in fresh and fresh.startswith("x\n<!-- BEGIN") and fresh.endswith("-->\ny\n")
    assert all(f"[`{name}`]({name}/server.py)" in fresh for name in registry.names())
