"""uring_io's own failure modes: what completion IO gets wrong that readiness IO cannot.

- A short send: a send completes with fewer bytes than asked; the rest must follow.
- A full submission queue: requests prepared past its size must be submitted, not
  written over the ones still queued.
- A completion queue that overflows: the completions past its size must all come.
- Batches of completions: one busy client must not starve the rest, and an echo must
  go out in the pass that prepared it, not wait for the next completion.

And where the kernel refuses io_uring: one line, exit 1.

The rings are driven directly here, in process, on socket pairs; the server runs as a
subprocess, with its ring sizes shrunk through a two-line variant (RING_VARIANT), so
that a handful of clients fills them. Each check also runs against the broken server
made for it (tests/broken/uring_*.py), and must fail there.
"""

from __future__ import annotations

import ctypes
import select
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.clients import assert_echoed, connect, echo, exchange
from tests.servers import spec_for
from toolkit.process import PORT, Address, ServerProcess, ServerSpec, run_server
from uring_io.ring import OP_RECV, OP_SEND, Ring, missing

needs_io_uring = pytest.mark.skipif(missing() is not None, reason=f"no io_uring here: {missing()}")

TINY_SQ, TINY_CQ = 2, 4  # the smallest rings io_uring_setup() takes with IORING_SETUP_CQSIZE
# The server on a kernel that refuses io_uring_setup(), as seccomp does in many containers.
REFUSED = (
    "import errno, os, uring_io.ring as ring\n"
    "def refuse(*args): raise OSError(errno.EPERM, os.strerror(errno.EPERM))\n"
    "ring.syscall = refuse\n"
    "import uring_io.server as server\n"
    "raise SystemExit(server.main())"
)
RING_VARIANT = (
    "import uring_io.server as server; "
    f"server.SQ_ENTRIES, server.CQ_ENTRIES = {TINY_SQ}, {TINY_CQ}; "
    "raise SystemExit(server.main())"
)
UNDER_LOAD = 0.25  # seconds: far above a loopback round trip, far below a starved client's wait


def uring_io(tiny_rings: bool = False) -> ServerSpec:
    if not tiny_rings:
        return spec_for("uring_io")
    command = (sys.executable, "-c", RING_VARIANT, "--port", PORT)
    return ServerSpec("uring_io with tiny rings", command, lifecycle=True)


def completions(ring: Ring, count: int, timeout: float = 5.0) -> dict[int, int]:
    """{tag: result} for `count` completions, waiting at most `timeout` seconds."""
    results: dict[int, int] = {}
    deadline = time.monotonic() + timeout
    while len(results) < count and time.monotonic() < deadline:
        ring.enter(1, 0.1)
        results.update(ring.completions())
    return results


@pytest.mark.timeout(30)
def test_a_kernel_that_refuses_io_uring_gets_one_line() -> None:
    command = (sys.executable, "-c", REFUSED, "--port", PORT)
    result = run_server(ServerSpec("uring_io, refused", command, lifecycle=True), 0)
    assert (result.returncode, result.stdout) == (1, "")
    assert (
        result.stderr == "error: uring_io needs io_uring: this kernel refuses it: Operation not permitted\n"
    )


@needs_io_uring
@pytest.mark.timeout(30)
def test_requests_past_a_full_submission_queue_are_all_submitted() -> None:
    ring = Ring(TINY_SQ, TINY_CQ * 16)
    pairs = [socket.socketpair() for _ in range(16)]
    buffers = [ctypes.create_string_buffer(16) for _ in pairs]
    try:
        for tag, ((ours, _), buffer) in enumerate(zip(pairs, buffers, strict=True), start=1):
            ring.submit(OP_RECV, ours.fileno(), tag, buffer)  # 16 into an SQ of 2
        for tag, (_, theirs) in enumerate(pairs, start=1):
            theirs.send(bytes([tag]))
        results = completions(ring, len(pairs))
        assert results == {tag: 1 for tag in range(1, len(pairs) + 1)}
        assert [buffer.raw[0] for buffer in buffers] == list(range(1, len(pairs) + 1))
    finally:
        ring.close()
        for ours, theirs in pairs:
            ours.close()
            theirs.close()


@needs_io_uring
@pytest.mark.timeout(30)
def test_completions_past_a_full_completion_queue_are_not_lost() -> None:
    ring = Ring(TINY_SQ, TINY_CQ)
    ours, theirs = socket.socketpair()
    payload = ctypes.create_string_buffer(b"x", 1)
    try:
        for tag in range(1, 101):  # each send completes at once: 100 into a CQ of 4
            ring.submit(OP_SEND, ours.fileno(), tag, payload)
        results = completions(ring, 100)
        assert results == {tag: 1 for tag in range(1, 101)}
        assert theirs.recv(1000) == b"x" * 100
    finally:
        ring.close()
        ours.close()
        theirs.close()


# The checks against a running server, each run against uring_io and its broken twin.


def short_sends(address: Address) -> None:
    """A client with a tiny receive window: the server's sends complete short, often."""
    payload = bytes(range(256)) * 16 * 1024  # 4 MiB
    with connect(address, rcvbuf=4096, timeout=30.0) as sock:
        assert_echoed(exchange(sock, payload, timeout=60.0), payload)


def many_clients_through_tiny_rings(address: Address) -> None:
    """Twenty clients at once through an SQ of 2 and a CQ of 4: each pass prepares more
    requests than the SQ holds, and more complete at once than the CQ holds."""

    def one(number: int) -> None:
        payload = bytes([number]) * 200_000
        with connect(address, timeout=5.0) as sock:
            assert_echoed(exchange(sock, payload, timeout=10.0), payload)

    with ThreadPoolExecutor(max_workers=20) as pool:
        for done in [pool.submit(one, number) for number in range(20)]:
            done.result(timeout=60)


def round_trips(sock: socket.socket, count: int) -> Iterator[float]:
    for number in range(count):
        message = f"ping {number}".encode()
        start = time.monotonic()
        assert echo(sock, message) == message
        yield time.monotonic() - start


def echo_goes_out_at_once(address: Address) -> None:
    """Lock step, one client alone: each echo must not wait for some later completion."""
    with connect(address) as sock:
        median = statistics.median(round_trips(sock, 5))
    assert median < UNDER_LOAD, f"a lone client's echo took {median * 1000:.0f} ms (median of 5)"


# The busy client, as two processes of its own (this one's GIL would slow it down):
# one sends 4 MiB at a time without pause; the other reads the echo as fast as it can,
# and says when it gets the first bytes.
BUSY_SENDER = "import socket\ns = socket.socket(fileno={fd})\nwhile True: s.sendall(b'b' * (4 << 20))"
BUSY_READER = (
    "import socket\ns = socket.socket(fileno={fd})\ns.recv(1)\nprint('echoing', flush=True)\n"
    "while s.recv(1 << 22): pass"
)
FAIR_SHARE = 150  # lock-step round trips a second, at least: a starved client gets a few dozen


def busy_client_does_not_starve_others(address: Address) -> None:
    """One client streams without pause; another, in lock step, still gets its turns."""
    with connect(address) as busy:
        busy.settimeout(None)  # blocking: its processes share the descriptor, and its flags
        fd = busy.fileno()
        sender, reader = (
            subprocess.Popen(
                [sys.executable, "-c", code.format(fd=fd)], pass_fds=[fd], stdout=subprocess.PIPE, text=True
            )
            for code in (BUSY_SENDER, BUSY_READER)
        )
        try:
            assert reader.stdout is not None
            assert select.select([reader.stdout], [], [], 10.0)[0], "the busy client got no echo in 10 s"
            with connect(address) as quiet:
                count, end = 0, time.monotonic() + 1.0
                while time.monotonic() < end:
                    assert echo(quiet, b"ping") == b"ping"
                    count += 1
        finally:
            for process in (sender, reader):
                process.kill()
                process.wait(timeout=10)
    assert count >= FAIR_SHARE, f"beside a busy client: {count} round trips in a second"


Check = Callable[[Address], None]
CHECKS: dict[str, tuple[Check, bool, str]] = {  # name: (check, tiny rings?, its broken server)
    "short sends": (short_sends, False, "uring_ignores_short_sends"),
    "full SQ": (many_clients_through_tiny_rings, True, "uring_overwrites_full_sq"),
    "CQ overflow": (many_clients_through_tiny_rings, True, "uring_keeps_cq_slots"),
    "echo at once": (echo_goes_out_at_once, False, "uring_batches_submissions"),
    "no starving": (busy_client_does_not_starve_others, False, "uring_drains_busy_client"),
}


@needs_io_uring
@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", list(CHECKS))
def test_uring_io(name: str) -> None:
    check, tiny_rings, _ = CHECKS[name]
    with ServerProcess(uring_io(tiny_rings)) as server:
        check(server.address)
        assert server.running()


@needs_io_uring
@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", list(CHECKS))
def test_fails_on_its_broken_server(name: str) -> None:
    check, _, broken = CHECKS[name]
    with (
        ServerProcess(spec_for(f"broken/{broken}")) as server,
        pytest.raises((AssertionError, OSError)) as failure,
    ):
        check(server.address)
    print(f"broken/{broken}: {name}: {failure.value!r}"[:300])
