"""prctl(PR_SET_PDEATHSIG), which the standard library lacks: a worker asks the kernel
to send it a signal the moment its master dies, however the master dies (SIGKILL
included, when no code of the master's runs). Without it a worker would outlive a
killed master as an orphan, still serving on the port. Linux only; elsewhere a worker
would have to poll os.getppid().
"""

from __future__ import annotations

import ctypes
import os

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(signum: int) -> None:
    """Have the kernel send `signum` to this process when its parent exits."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0) != 0:
        error = ctypes.get_errno()
        raise OSError(error, os.strerror(error))
