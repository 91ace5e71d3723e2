"""Broken on purpose: takes --max-connections, like every server here, and never looks
at it, so a flood of clients gets a thread each until memory or descriptors run out."""

from tests.broken.harness import echo_correctly, run

CAUGHT_BY = ("8.1",)

run(echo_correctly, limit_connections=False)  # DEFECT: nothing counts the clients being served
