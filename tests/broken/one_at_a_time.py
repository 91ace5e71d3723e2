"""Broken on purpose: serves one client at a time; the next waits in the listen backlog
until the current one has left."""

from tests.broken.harness import echo_correctly, run

CAUGHT_BY = ("3.2", "3.3")

run(echo_correctly, threads=False)  # DEFECT: each client is served in the accepting thread
