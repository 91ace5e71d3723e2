"""Run a Python server module with a do-nothing handler for SIGUSR1, so a storm of that
signal interrupts its system calls (EINTR) without asking it to do anything.

    python3 -m tests.harmless_signals MODULE [ARGS...]

A signal with no handler, or an ignored one, interrupts nothing. Python installs its
handlers without SA_RESTART, so a recv(), send(), accept() or epoll_wait() blocked when
one arrives returns EINTR, and Python retries it (PEP 475). The test sends the signal
to every thread (tgkill), not to the process, which the kernel hands to one thread.
"""

from __future__ import annotations

import runpy
import signal
import sys


def ignore(signum: int, frame: object) -> None:
    """Does nothing, but being a handler, makes the signal interrupt a blocked call."""


if __name__ == "__main__":
    signal.signal(signal.SIGUSR1, ignore)
    module, *arguments = sys.argv[1:]
    sys.argv = [module, *arguments]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
