"""docs/syscalls.py: strace's counts are read right, and a small workload tells the models apart."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections import Counter

import pytest

from docs import syscalls

pytestmark = pytest.mark.timeout(60)

SUMMARY = """\
% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 41.20    0.002000          20       100        37 recvfrom
 30.00    0.001500          15       100           sendto
------ ----------- ----------- --------- --------- ----------------
100.00    0.003500          17       200        37 total
"""


def test_strace_summary_is_parsed() -> None:
    assert syscalls.parse_summary(SUMMARY) == (Counter(recvfrom=100, sendto=100), 37)


def strace_unusable() -> str | None:
    """Why strace cannot trace a process here, or None if it can."""
    if shutil.which("strace") is None:
        return "strace is not on PATH"
    probe = subprocess.run(
        ["strace", "-o", os.devnull, "true"], capture_output=True, text=True, timeout=10, check=False
    )
    if probe.returncode != 0:
        return f"strace cannot trace here (is ptrace permitted?): {probe.stderr.strip()}"
    return None


def test_select_and_epoll_make_their_own_syscalls() -> None:
    if reason := strace_unusable():
        pytest.skip(reason)
    figures = syscalls.measure(("select_mux", "epoll_mux"), syscalls.SMALL)
    select_mux, epoll_mux = figures["select_mux"], figures["epoll_mux"]
    # One message in flight at a time: each one needs its own wakeup.
    assert select_mux["select, pselect6"] >= 1, select_mux
    assert select_mux["epoll_wait, epoll_pwait"] == select_mux["epoll_ctl"] == 0, select_mux
    assert epoll_mux["epoll_wait, epoll_pwait"] >= 1, epoll_mux
    assert epoll_mux["epoll_ctl"] > 0, epoll_mux  # a register and an unregister per connection
    assert epoll_mux["select, pselect6"] == 0, epoll_mux
    for rows in figures.values():
        assert rows["recvfrom, recv"] >= 1, rows
        assert 1 <= rows["sendto, send"] < 1.5, rows  # 1 KiB always fits the send buffer at once
        assert 3 <= rows["total"] < 10, rows  # a recv, a send and a wait each, plus connecting
