"""Broken on purpose: when accept() fails (out of descriptors: EMFILE), it logs the
error and tries again at once. The client is still queued, so the listener is still
ready and accept() fails again: a core spins and the log floods until a client leaves."""

import logging

from tests.broken.harness import echo_correctly, run

CAUGHT_BY = ("9.1",)

log = logging.getLogger("spins_at_emfile")


def retry_at_once(error: OSError | RuntimeError) -> None:
    log.error("accept failed: %s", error)  # DEFECT: no pause, and a line per failure


run(echo_correctly, after_accept_error=retry_at_once)
