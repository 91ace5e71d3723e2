"""Group 9, faults: what production throws at a server, injected on loopback. It runs
out of descriptors; clients reset by the hundred, some before it accepts them; many
clients push and never read; some trickle a byte at a time; signals interrupt its
system calls. Through all of it the server must keep serving everyone else, without
spinning a core, flooding its log or growing without bound."""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import os
import signal
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import psutil  # type: ignore[import-untyped]  # no stubs in the test extras (types-psutil)
import pytest

from tests.clients import (
    IO_TIMEOUT,
    connect,
    connect_served,
    echo,
    open_clients,
    recv_until_eof,
    reset,
    served,
)
from tests.conformance.cases import case
from tests.conformance.report import EMFILE_CPU
from tests.servers import RecordProperty, Server, StartServer, assert_back_to, frozen, quiet_baseline
from tests.streams import PatternStream, push_all_until_stalled, read_whole_stream
from toolkit.measure import (
    child_processes,
    cpu_share,
    server_fds,
    server_rss,
    set_fd_limit,
    soft_fd_limit,
)
from toolkit.process import Address, ServerProcess, ServerSpec, wait_until

# --- 9.1 out of descriptors --------------------------------------------------------

HEADROOM = 10  # descriptors the server may open beyond those it holds when idle
WAITING = 5  # clients beyond them; socketserver's backlog of 5 holds them all
SERVED_WITHIN = 1.0
CPU_WINDOW = 2.0
MAX_CPU_SHARE = 0.2  # of one core; a server retrying accept() at once uses all of it
MAX_LOG_LINES = 5  # in the window: one line per spell, not one per failed accept()


def served_within(sock: socket.socket, timeout: float) -> bool:
    """Did the greeting already sent on sock come back within timeout?"""
    sock.settimeout(timeout)
    try:
        return sock.recv(64) != b""
    except TimeoutError:
        return False
    finally:
        sock.settimeout(IO_TIMEOUT)


@case("9.1", "Out of descriptors (EMFILE): no spin, no crash, one log line; serves once freed", timeout=90)
@pytest.mark.parametrize("backlog", [None, "65535"], ids=lambda backlog: f"backlog-{backlog or 'default'}")
def test_out_of_descriptors(
    server_spec: ServerSpec, start_server: StartServer, record_property: RecordProperty, backlog: str | None
) -> None:
    # "No spin" holds at any --backlog: asyncio once made --backlog accept() calls per
    # wakeup, each failing and retried, so its CPU at EMFILE grew with the number.
    if backlog is not None and not server_spec.lifecycle:
        pytest.skip("not applicable: --backlog is io-models' command line (--lifecycle)")
    server = start_server(*(["--backlog", backlog] if backlog else []))
    # Decided before the injection, from what the server is, not from how it coped.
    with connect_served(server.address, 0):
        if child_processes(server.pid):
            pytest.skip(
                "not applicable: it serves clients in processes of its own, so a limit on "
                "one process does not run the server out of descriptors"
            )
    baseline = quiet_baseline(server, server_fds)
    set_fd_limit(server.pid, baseline + HEADROOM)  # prlimit(2) on the running server
    took = soft_fd_limit(server.pid)
    assert took == baseline + HEADROOM, f"RLIMIT_NOFILE is {took} after setting it to {baseline + HEADROOM}"
    with ExitStack() as stack:
        clients = [stack.enter_context(connect(server.address)) for _ in range(HEADROOM + WAITING)]
        for number, sock in enumerate(clients):
            sock.sendall(f"client {number}".encode())
        served = [sock for sock in clients if served_within(sock, SERVED_WITHIN)]
        waiting = [sock for sock in clients if sock not in served]
        assert waiting, (
            f"all {len(clients)} clients were served with {HEADROOM} descriptors to spare: "
            "the server opens descriptors beyond its limit, or holds none per client"
        )
        log_lines = len(server.stderr_text().splitlines())
        share = cpu_share(server.pid, CPU_WINDOW)
        new_lines = server.stderr_text().splitlines()[log_lines:]
        record_property("measured", f"CPU at EMFILE: {share:.1%} of a core; {len(new_lines)} log lines")
        record_property("figure", (EMFILE_CPU, round(100 * share, 1)))
        assert server.running(), f"the server died at its descriptor limit: {server.stderr_text()[-2000:]}"
        assert share < MAX_CPU_SHARE, f"the server used {share:.0%} of a core while at EMFILE"
        assert len(new_lines) <= MAX_LOG_LINES, f"{len(new_lines)} log lines in {CPU_WINDOW}s at EMFILE"
        # Descriptors free up: every client still waiting gets its greeting back.
        for sock in served:
            sock.close()
        for sock in waiting:
            assert sock.recv(64) != b"", "a client that waited at EMFILE was closed, not served"


@case("9.6", "A stop while out of descriptors drains, then exits 0 with no traceback", timeout=60)
def test_stop_while_out_of_descriptors(server_spec: ServerSpec, start_server: StartServer) -> None:
    if not server_spec.lifecycle:
        pytest.skip("not applicable: exit status and drain are io-models' command line (--lifecycle)")
    server = start_server("--drain-timeout", "2")  # longer than any accept pause (asyncio: 1 s)
    limit = quiet_baseline(server, server_fds) + HEADROOM
    set_fd_limit(server.pid, limit)
    with ExitStack() as stack:
        for number in range(HEADROOM + WAITING):
            stack.enter_context(connect(server.address)).sendall(f"client {number}".encode())
        # Every descriptor taken, clients still queued: its next accept() fails, EMFILE.
        assert wait_until(lambda: server_fds(server.pid) >= limit, timeout=IO_TIMEOUT), (
            f"the server never took all {limit} descriptors it may have"
        )
        server.send_signal(signal.SIGTERM)
        status = server.wait(2 + 1 + 1)
    assert status == 0, server.stderr_text()[-2000:]
    assert "Traceback" not in server.stderr_text(), server.stderr_text()[-3000:]


# --- 9.7 a thread that cannot start -------------------------------------------------

HELD = 3
THREADLESS_NEWCOMERS = 5
# Address space left to the server: less than one thread's stack (8 MiB by default, the
# `ulimit -s` size), so a thread-per-client server cannot start one more thread, while
# what a loop allocates per client fits easily. RLIMIT_NPROC would say it better, but
# root is exempt from it; RLIMIT_AS binds everyone.
AS_HEADROOM = 4 << 20


def address_space_limit(pid: int) -> str:
    """The soft RLIMIT_AS the kernel holds for pid, as /proc/PID/limits shows it."""
    with open(f"/proc/{pid}/limits") as limits:
        line = next(line for line in limits if line.startswith("Max address space"))
    return line.split()[3]


def answered(sock: socket.socket, number: int) -> str:
    """'served' (its echo came back), 'turned away' (FIN or RST), or 'silent'."""
    greeting = f"newcomer {number}".encode()
    sock.settimeout(IO_TIMEOUT)
    try:
        sock.sendall(greeting)
        return "served" if sock.recv(64) == greeting else "turned away"
    except ConnectionError:
        return "turned away"
    except TimeoutError:
        return "silent"


@case("9.7", "A client whose thread cannot start is turned away; the others are still served", timeout=90)
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="not applicable: reads /proc/PID/limits")
def test_thread_cannot_start(start_server: StartServer, record_property: RecordProperty) -> None:
    server = start_server()
    held = [connect_served(server.address, number) for number in range(HELD)]
    process = psutil.Process(server.pid)
    if process.children():  # the limit would bind the parent only
        pytest.skip("not applicable: it forks, so the limit on one process says nothing")
    limit = process.memory_info().vms + AS_HEADROOM
    process.rlimit(psutil.RLIMIT_AS, (limit, psutil.RLIM_INFINITY))
    try:
        assert address_space_limit(server.pid) == str(limit), "the lowered RLIMIT_AS did not take"
        outcomes = []
        for number in range(THREADLESS_NEWCOMERS):
            with connect(server.address) as newcomer:
                outcomes.append(answered(newcomer, number))
        record_property("measured", f"newcomers at RLIMIT_AS = VmSize + 4 MiB: {', '.join(outcomes)}")
        assert server.running(), f"the server died when it could not grow: {server.stderr_text()[-2000:]}"
        assert "silent" not in outcomes, f"a newcomer got no answer at all: {outcomes}"
        for number, sock in enumerate(held):
            message = f"still served {number}".encode()
            assert echo(sock, message) == message, "a client served before the limit was dropped"
    finally:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.rlimit(psutil.RLIMIT_AS, (psutil.RLIM_INFINITY, psutil.RLIM_INFINITY))
        for sock in held:
            sock.close()
    assert wait_until(lambda: served(server.address), timeout=IO_TIMEOUT), "no client served after the limit"
    assert "Traceback" not in server.stderr_text(), server.stderr_text()[-3000:]


# --- 9.2 reset storms ---------------------------------------------------------------

MID_ECHO_RESETS = 300
FROZEN_ROUNDS, RESETS_PER_ROUND = 20, 5  # within socketserver's backlog of 5


@case("9.2", "Reset storms, mid-echo and before accept (ECONNABORTED), hurt no one", timeout=120)
def test_reset_storm(start_server: StartServer) -> None:
    server = start_server()
    baseline = quiet_baseline(server, server_fds)
    with connect_served(server.address, 0) as bystander:
        payload = bytes(range(256)) * 256  # 64 KiB: the server is mid-echo when the RST comes
        for _ in range(MID_ECHO_RESETS):
            sock = connect(server.address)
            sock.sendall(payload)
            reset(sock)
        # Reset while still in the listen backlog: BSD's accept() then fails with
        # ECONNABORTED; Linux hands the dead connection over and recv() says ECONNRESET.
        for number in range(FROZEN_ROUNDS):
            # A new client served means every connection queued before it was accepted
            # (the backlog is first in, first out): the frozen round's connects fit in it.
            with connect_served(server.address, number):
                pass
            with frozen(server):
                for _ in range(RESETS_PER_ROUND):
                    reset(connect(server.address))
            assert echo(bystander, b"still here?") == b"still here?"
        assert server.running(), server.stderr_text()[-2000:]
        with connect_served(server.address, FROZEN_ROUNDS):
            pass
    assert_back_to(server, server_fds, baseline, "descriptors")


# --- 9.3 many slow readers ----------------------------------------------------------

SLOW_READERS = 50
# More than a correct server holds (its cap), fewer than the kernel buffers on the way
# may take (up to ~14 MiB a connection on loopback, autotuned): so whether all of it was
# taken says nothing; where it went, the server's memory, says it all.
PUSH_EACH = 8 << 20
# Per client: the default 64 KiB cap, plus one read past it (asyncio's transport reads
# 256 KiB at a time). Slack: the interpreter; the allocator (blocking's 50 threads get
# malloc arenas of their own: +6 to +20 MiB measured); the kernel's accounting. Our
# models grow by 3 to 7 MiB in all; a server that reads a few MiB ahead of the cap for
# each client crosses the bound, one that keeps reading grows by hundreds of MiB.
BOUND_PER_CLIENT = (64 << 10) + (256 << 10)
SLACK = 16 << 20
STALL = 1.0  # no client writable for this long: every buffer on the way is full


@case(
    "9.3", f"{SLOW_READERS} clients push, never read: memory within clients x cap; others served", timeout=120
)
def test_many_slow_readers(server_process: ServerProcess, record_property: RecordProperty) -> None:
    server = server_process
    with ExitStack() as stack:
        clients = [stack.enter_context(connect(server.address, rcvbuf=4096)) for _ in range(SLOW_READERS)]
        for sock in clients:
            assert echo(sock, b"hello") == b"hello"
        baseline = server_rss(server.pid)
        pushed = push_all_until_stalled(clients, PatternStream(seed=93), limit_each=PUSH_EACH, stall=STALL)
        growth = server_rss(server.pid) - baseline
        record_property("measured", f"{pushed >> 20} MiB pushed by {SLOW_READERS}; RSS +{growth >> 10} KiB")
        bound = SLOW_READERS * BOUND_PER_CLIENT + SLACK
        assert growth < bound, f"RSS grew {growth >> 20} MiB for {SLOW_READERS} stalled clients"
        with connect_served(server.address, SLOW_READERS):
            pass  # while they all stall, a new client is still served


# --- 9.4 tricklers and idlers -------------------------------------------------------

IDLERS = 100
TRICKLERS = 50
TRICKLE_INTERVAL = 0.005
NEWCOMERS = 20
MAX_NEWCOMER_WAIT = 1.0  # from connect() to its echo; a delay anyone would notice


class Trickle:
    """A thread that sends each trickler one byte every TRICKLE_INTERVAL and reads what
    comes back; at the end, every byte sent must have come back in order."""

    def __init__(self, clients: list[socket.socket]) -> None:
        self.clients = clients
        self.sent = {sock: bytearray() for sock in clients}
        self.received = {sock: bytearray() for sock in clients}
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run)
        for sock in clients:
            sock.setblocking(False)

    def run(self) -> None:
        counter = 0
        while not self.stopping.wait(TRICKLE_INTERVAL):
            counter += 1
            for sock in self.clients:
                byte = bytes([counter % 251])
                sock.send(byte)  # one byte always fits the send buffer
                self.sent[sock] += byte
                with contextlib.suppress(BlockingIOError):  # nothing back yet
                    self.received[sock] += sock.recv(4096)

    def finish(self) -> None:
        self.stopping.set()
        self.thread.join()
        deadline = time.monotonic() + IO_TIMEOUT
        for sock in self.clients:
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            while len(self.received[sock]) < len(self.sent[sock]):
                chunk = sock.recv(4096)  # TimeoutError past the deadline
                assert chunk, f"the server closed a trickler with {len(self.sent[sock])} bytes sent"
                self.received[sock] += chunk
            assert self.received[sock] == self.sent[sock], "a trickled byte came back wrong"


@case("9.4", "Clients trickling a byte every 5 ms, and idle ones, do not delay a new client", timeout=120)
def test_tricklers_and_idlers(server: Server, record_property: RecordProperty) -> None:
    idlers = open_clients(server.address, IDLERS)
    tricklers = open_clients(server.address, TRICKLERS)
    trickle = Trickle(tricklers)
    try:
        trickle.thread.start()
        waits = []
        for number in range(NEWCOMERS):
            started = time.monotonic()
            with connect_served(server.address, number):
                waits.append(time.monotonic() - started)
        trickle.finish()
    finally:
        trickle.stopping.set()
        for sock in idlers + tricklers:
            sock.close()
    record_property("measured", f"new client's connect + echo: worst {max(waits) * 1000:.0f} ms")
    assert max(waits) < MAX_NEWCOMER_WAIT, f"a new client waited {max(waits):.2f}s for its echo"


# --- 9.5 signals during IO ----------------------------------------------------------

TRANSFER = 8 << 20
TRANSFERS = 3
BURST, BURST_PAUSE = 64 << 10, 0.001  # pauses, so the server often waits in recv()
SIGNAL_INTERVAL = 0.0005
libc = ctypes.CDLL(None, use_errno=True)


def with_harmless_signals(spec: ServerSpec) -> ServerSpec:
    """The same server, run by tests.harmless_signals: only a Python server started with
    `-m` can be given handlers from outside (exec() resets them)."""
    command = spec.command or ()
    if command[:2] != (sys.executable, "-m"):
        pytest.skip("not applicable: a signal storm needs a Python server run with -m")
    return dataclasses.replace(spec, command=(sys.executable, "-m", "tests.harmless_signals", *command[2:]))


def signal_every_thread(pid: int, signum: int) -> int:
    """Send signum to each thread of the process (tgkill): kill() would reach only one."""
    threads = os.listdir(f"/proc/{pid}/task")
    for thread in threads:
        libc.tgkill(pid, int(thread), signum)  # -1 (ESRCH) for a thread that ended: fine
    return len(threads)


def send_in_bursts(sock: socket.socket, payload: bytes) -> None:
    for start in range(0, len(payload), BURST):
        sock.sendall(payload[start : start + BURST])
        time.sleep(BURST_PAUSE)
    sock.shutdown(socket.SHUT_WR)


def transfer(address: Address, payload: bytes) -> bytes:
    with connect(address) as sock, ThreadPoolExecutor(1) as pool:
        sending = pool.submit(send_in_bursts, sock, payload)
        received = recv_until_eof(sock, timeout=30.0)
        sending.result(timeout=30.0)
    return received


@case("9.5", "A storm of harmless signals (EINTR) during large transfers changes nothing", timeout=120)
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="not applicable: tgkill is Linux's")
def test_signal_storm(server_spec: ServerSpec, record_property: RecordProperty) -> None:
    with ServerProcess(with_harmless_signals(server_spec)) as server:
        stopping = threading.Event()
        sent = 0

        def storm() -> None:
            nonlocal sent
            while not stopping.wait(SIGNAL_INTERVAL):
                sent += signal_every_thread(server.pid, signal.SIGUSR1)

        storming = threading.Thread(target=storm)
        storming.start()
        try:
            payloads = [os.urandom(TRANSFER) for _ in range(TRANSFERS)]
            with ThreadPoolExecutor(TRANSFERS) as pool:
                results = list(pool.map(lambda payload: transfer(server.address, payload), payloads))
        finally:
            stopping.set()
            storming.join()
        record_property("measured", f"{sent} signals during {TRANSFERS} x {TRANSFER >> 20} MiB")
        assert server.running(), server.stderr_text()[-2000:]
        for number, (received, payload) in enumerate(zip(results, payloads, strict=True)):
            assert received == payload, f"transfer {number}: {len(received)} of {TRANSFER} bytes, or wrong"


# --- 9.8 a stop in the middle of a transfer ----------------------------------------

STOP_TRANSFER = 32 << 20
STOP_AFTER = 4 << 20  # echoed before the SIGTERM: the transfer is well under way
STOP_DRAIN = 3.0


@case(
    "9.8",
    "SIGTERM mid-transfer: every byte echoed then FIN, or a prefix cut at the drain timeout",
    timeout=60,
)
def test_stop_in_the_middle_of_a_transfer(
    server_spec: ServerSpec, start_server: StartServer, record_property: RecordProperty
) -> None:
    if not server_spec.lifecycle:
        pytest.skip("not applicable: the drain is io-models' command line (--lifecycle)")
    server = start_server("--drain-timeout", str(STOP_DRAIN))
    stream = PatternStream(seed=98)
    stopped_at = 0.0

    def stop_once(received: int) -> None:
        nonlocal stopped_at
        if not stopped_at and received >= STOP_AFTER:
            server.send_signal(signal.SIGTERM)
            stopped_at = time.monotonic()

    with connect(server.address, timeout=STOP_DRAIN + IO_TIMEOUT) as sock:
        received = read_whole_stream(sock, stream, STOP_TRANSFER, on_progress=stop_once)
        ended = time.monotonic()
    status = server.wait(STOP_DRAIN + IO_TIMEOUT)
    after = ended - stopped_at
    echoed = f"{received >> 20} of {STOP_TRANSFER >> 20} MiB echoed"
    record_property("measured", f"{echoed}, the last byte {after:.2f}s after SIGTERM")
    assert stopped_at, f"the transfer ended at {received} bytes, before the stop signal"
    if received < STOP_TRANSFER:  # only the drain timeout may cut a transfer short
        assert after >= 0.9 * STOP_DRAIN, (
            f"the stop cut the transfer at {received} of {STOP_TRANSFER} bytes, "
            f"{after:.2f}s after SIGTERM, within the {STOP_DRAIN}s drain"
        )
    assert status == 0, server.stderr_text()[-2000:]
