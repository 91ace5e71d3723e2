"""The one thing signal-driven IO needs that the standard library lacks: a signal's si_fd.

With fcntl(F_SETSIG), Linux queues a real-time signal per readiness event and fills
in siginfo_t's si_fd (which descriptor) and si_band (POLLIN, POLLOUT...). Python hands
neither over: a handler gets the signal number alone, and signal.sigtimedwait()
returns a struct_siginfo without si_fd (CPython copies si_signo, si_code, si_errno,
si_pid, si_uid, si_status and si_band only). So this calls the C library's
sigtimedwait() through ctypes and reads the siginfo_t itself.

The layout is Linux's on 64-bit x86 and ARM (glibc and musl agree): three ints, a
pad to 8 bytes, then the union, whose SIGPOLL member is {long si_band; int si_fd},
in 128 bytes. sigset_t is filled by the C library's own sigemptyset()/sigaddset().
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import signal
from collections.abc import Iterable
from typing import NamedTuple

libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)  # ctypes drops the GIL in calls


class SigInfo(ctypes.Structure):
    _fields_ = [
        ("si_signo", ctypes.c_int),
        ("si_errno", ctypes.c_int),
        ("si_code", ctypes.c_int),
        ("_pad", ctypes.c_int),
        ("si_band", ctypes.c_long),
        ("si_fd", ctypes.c_int),
        ("_rest", ctypes.c_byte * (128 - 28)),
    ]


class TimeSpec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class SigSet(ctypes.Structure):
    _fields_ = [("bits", ctypes.c_ulong * (1024 // (8 * ctypes.sizeof(ctypes.c_ulong))))]  # glibc's


class Event(NamedTuple):
    signo: int
    fd: int  # which descriptor: set for a queued F_SETSIG signal, not for plain SIGIO
    band: int  # what happened to it: POLLIN, POLLOUT, POLLERR, POLLHUP...


def blocked(signals: Iterable[int]) -> SigSet:
    """Block these signals (a blocked signal stays queued, and no handler nor default
    action, such as SIGIO's, which terminates, runs) and return them as a sigset_t."""
    signals = list(signals)
    signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    members = SigSet()
    libc.sigemptyset(ctypes.byref(members))
    for signum in signals:
        libc.sigaddset(ctypes.byref(members), signum)
    return members


def sigtimedwait(members: SigSet, timeout: float | None) -> Event | None:
    """Take one pending signal of `members` (which the caller keeps blocked), waiting up
    to timeout seconds (None: forever); None when none came, or a handled signal of
    another kind interrupted the wait (EINTR: the caller recomputes its timeout)."""
    info = SigInfo()
    limit = None
    if timeout is not None:
        seconds = int(timeout)
        limit = ctypes.byref(TimeSpec(seconds, int((timeout - seconds) * 1e9)))
    signo = libc.sigtimedwait(ctypes.byref(members), ctypes.byref(info), limit)
    if signo > 0:
        return Event(signo, info.si_fd, info.si_band)
    if ctypes.get_errno() in (errno.EAGAIN, errno.EINTR):
        return None
    raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
