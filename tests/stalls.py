"""Hypothesis plumbing: a server that stops answering ends a hypothesis test at once."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


class Stalled(BaseException):
    """The server stopped answering: no echo, or no EOF, before the deadline.

    Raised in place of TimeoutError inside hypothesis tests. Hypothesis reruns a failing
    test many times to shrink its example: right for a wrong byte, useless for a silent
    server, where every rerun waits out the same timeout, for minutes. Hypothesis
    catches only Exception, so a BaseException ends the test at once; pytest reports it
    as the failure.
    """


@contextlib.contextmanager
def stall_ends_the_test() -> Iterator[None]:
    """Turn a timeout into Stalled; also usable as a decorator."""
    try:
        yield
    except TimeoutError as timeout:
        raise Stalled(f"the server stalled: {timeout}") from timeout
