"""The one call the standard library lacks: prctl(PR_SET_PDEATHSIG), through ctypes. The
models that fork (forking's children, prefork's workers) share it.

A child whose parent dies is re-parented to init and would serve on, an orphan nobody
stops: a parent's second stop signal exits at once (os._exit), and SIGKILL runs no
code at all. PR_SET_PDEATHSIG asks the kernel to send the child a signal when the thread
that forked it exits. Linux only (FreeBSD has procctl(PROC_PDEATHSIG_CTL)).
"""

from __future__ import annotations

import ctypes
import os
import signal

PR_SET_PDEATHSIG = 1  # linux/prctl.h

libc = ctypes.CDLL(None, use_errno=True)


def die_with_parent(parent: int) -> None:
    """In a child just forked: be killed (SIGKILL) when the parent exits, however it exits."""
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    if os.getppid() != parent:  # it died before prctl() took effect: no signal will come
        os._exit(1)
