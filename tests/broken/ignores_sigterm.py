"""Broken on purpose: a stop signal sets a flag the main loop never gets to look at, so
SIGTERM and SIGINT change nothing while no client connects."""

from tests.broken.harness import echo_correctly, run

CAUGHT_BY = ("7.3",)

# DEFECT: accept() blocks with no timeout, and after the handler runs it is retried
# (PEP 475), so the loop never gets to check the flag while no client connects.
run(echo_correctly, accept_timeout=None)
