"""The suite's command-line options. They live at the root because pytest reads options
only from the conftest files it loads before parsing the command line, and this is the
one it always loads, whether it was started with a path or not."""

from __future__ import annotations

import pytest

from tests.support import MODELS


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--models",
        default=",".join(MODELS),
        help="comma-separated servers to test: model packages, or broken/<name> from tests/broken",
    )
