"""The suite's plugin and hypothesis profiles. They live at the root because pytest
reads options only from the conftest files it loads before parsing the command line,
and this is the one it always loads, with or without a test path."""

from __future__ import annotations

from hypothesis import settings

pytest_plugins = ["tests.conformance.plugin"]

# Every example talks to a real server over loopback: no per-example deadline (a loaded
# machine is slow, not wrong). The default run stays quick; ask for more with
# `--hypothesis-profile thorough`, which overrides the profile loaded here.
settings.register_profile("fast", max_examples=25, deadline=None)
settings.register_profile("thorough", max_examples=1000, deadline=None)
settings.load_profile("fast")
