"""Where a byte waits, in each model: one lane per model, drawn as an SVG.

A byte's trip through an echo server: the client sends it, it lands in the kernel's
receive buffer, the server picks it up (and here the models differ: who waits for it,
in which call), it sits owed in the server until the client has room to take it back
(and here they differ again), then it goes through the kernel's send buffer. The
diagram is the guide's one question, "where does a byte wait when the client is slow
to read it?", for every model at once. Standard library only; from the repository root:

    python3 -m docs.waits   # writes docs/waits.svg
"""

from __future__ import annotations

import html
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

from common.declaration import Model
from toolkit import registry

OUTPUT = Path(__file__).resolve().parent / "waits.svg"


COLUMNS = [  # (heading, width in px, what every model shares here, or None: a lane per model)
    ("client", 100, "sends a byte"),
    ("kernel", 150, "the socket's receive buffer. Full, because the server stopped reading: "
     "TCP's window closes and the client's send() blocks"),
    ("the server picks it up", 290, None),
    ("owed: where it waits for a slow reader", 320, None),
    ("kernel", 150, "the socket's send buffer. Full, because the client is slow to read: the "
     "socket is not writable"),
    ("client", 100, "reads the byte back, or is slow to"),
]  # fmt: skip
GAP, LEFT, TOP, LANE, CHAR = 26, 120, 64, 78, 6.4  # px; CHAR: mean width of a 12 px character
SHARED, WAIT_IN, WAIT_OWED = "#eaeef2", "#ddf4ff", "#fff1b3"  # fills: kernel and client; the two waits
KEY = [
    "Blue: the call in which the server waits for input, and how it learns the byte is there.",
    "Yellow: where the byte waits while its client is slow to read. At --buffer-size owed, every model",
    "stops reading that client, so its next bytes wait in the kernel's receive buffer instead.",
]


def box(x: float, y: float, width: float, height: float, *, text: str, fill: str) -> str:
    """A rounded box with its text wrapped to the width, centred on both axes."""
    lines = textwrap.wrap(text, max(8, int((width - 12) / CHAR)))
    first = y + height / 2 - 7.5 * (len(lines) - 1) + 4
    spans = "".join(
        f'<tspan x="{x + width / 2:.0f}" y="{first + 15 * i:.0f}">{html.escape(line)}</tspan>'
        for i, line in enumerate(lines)
    )
    return (
        f'<rect x="{x:.0f}" y="{y + 6:.0f}" width="{width:.0f}" height="{height - 12:.0f}" rx="6" '
        f'fill="{fill}" stroke="#8c959f"/><text text-anchor="middle">{spans}</text>'
    )


def arrow(x1: float, x2: float, y: float) -> str:
    return (
        f'<line x1="{x1:.0f}" y1="{y:.0f}" x2="{x2:.0f}" y2="{y:.0f}" stroke="#57606a" marker-end="url(#a)"/>'
    )


def svg(models: Sequence[Model]) -> str:
    """One lane per model, from what its declaration says: picks_up and owed."""
    width = LEFT + sum(w for _, w, _ in COLUMNS) + GAP * (len(COLUMNS) - 1) + 10
    lanes_height = LANE * len(models)
    height = TOP + lanes_height + 24 + 16 * len(KEY)
    parts, x = [], LEFT
    for column, (heading, column_width, shared) in enumerate(COLUMNS):
        parts.append(
            f'<text x="{x + column_width / 2:.0f}" y="{TOP - 10}" text-anchor="middle" '
            f'font-weight="bold">{html.escape(heading)}</text>'
        )
        if shared is not None:  # one tall box for every model
            parts.append(box(x, TOP, column_width, lanes_height, text=shared, fill=SHARED))
        for lane, model in enumerate(models):
            y = TOP + LANE * lane
            if shared is None:
                fill = WAIT_IN if column == 2 else WAIT_OWED
                text = model.picks_up if column == 2 else model.owed
                parts.append(box(x, y, column_width, LANE, text=text, fill=fill))
            if column:  # an arrow from the column before, in every lane
                parts.append(arrow(x - GAP + 2, x - 3, y + LANE / 2))
        x += column_width + GAP
    labels = "".join(
        f'<text x="{LEFT - 10}" y="{TOP + LANE * i + LANE / 2 + 4:.0f}" text-anchor="end" '
        f'font-family="monospace" font-weight="bold">{html.escape(model.name)}</text>'
        for i, model in enumerate(models)
    )
    key = "".join(
        f'<text x="{LEFT}" y="{TOP + lanes_height + 24 + 16 * i}">{html.escape(line)}</text>'
        for i, line in enumerate(KEY)
    )
    title = "Where a byte waits, in each IO model"
    return f"""<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" \
viewBox="0 0 {width} {height}" font-family="system-ui, sans-serif" font-size="12" fill="#1f2328">
<title>{title}</title>
<defs><marker id="a" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" \
orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#57606a"/></marker></defs>
<rect width="100%" height="100%" fill="#fff"/>
<text x="{LEFT}" y="24" font-size="16" font-weight="bold">{title}</text>
{"".join(parts)}
{labels}
{key}
</svg>
"""


def main() -> int:
    OUTPUT.write_text(svg(registry.models()), encoding="utf-8")
    print(OUTPUT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
