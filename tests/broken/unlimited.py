"""Broken on purpose: takes --max-connections, like every server here, and never looks
at it, so a flood of clients gets a thread each until memory or descriptors run out."""

from tests.broken.harness import echo_correctly, run

run(echo_correctly)  # DEFECT: nothing counts the clients being served
