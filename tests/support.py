"""Helpers the conformance tests share: run a server, talk to it, wait for conditions.

Every wait here is bounded. A server under test may be broken in any way (silent,
slow, crashed), and a helper that blocks forever turns a clear failure into a hang.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import resource
import selectors
import shlex
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Protocol, TypeVar

import psutil  # type: ignore[import-untyped]  # no stubs in the test extras (types-psutil)
from hypothesis import strategies as st

from toolkit import registry

REPO_ROOT = Path(__file__).resolve().parent.parent
MODELS = registry.names()
BROKEN_PREFIX = "broken/"
PORT = "{port}"  # where a server's command takes the port to listen on

# Generous on purpose: on a loaded 2-core machine a slow answer is not a wrong answer.
# Tests that check promptness assert their own, tighter, bounds.
READY_TIMEOUT = 10.0
IO_TIMEOUT = 5.0  # how long an echo may take before it counts as never coming
STOP_TIMEOUT = 10.0  # a SIGTERM'd server may drain for the default 5 s before it exits
# How long the server may take to notice that the last clients have gone.
SETTLE = 5.0
EXIT_TIMEOUT = 5.0  # a server that should exit at once (bad arguments, --help) but serves instead

READY_LINE = re.compile(r"listening on (?:\[(?P<ipv6>[^\]]+)\]|(?P<ipv4>[^:\s]+)):(?P<port>\d+)")

Address = tuple[str, int]
Number = TypeVar("Number", int, float)
CompletedProcess = subprocess.CompletedProcess[str]


@dataclass(frozen=True)
class ServerSpec:
    """A server under test: how to start it (or where it already runs), what it offers.

    command is an argv with PORT ("{port}") where the port goes. A server that follows
    io-models' command line (lifecycle) is started on port 0 and read its port from
    its ready line; any other is given a free port and is ready once it accepts.
    """

    name: str
    command: tuple[str, ...] | None = None
    target: Address | None = None
    lifecycle: bool = False
    deviations: Mapping[str, str] = field(default_factory=dict)  # case id -> documented reason
    unavailable: str | None = None  # why it cannot run here at all
    # A limit the model declares on purpose: the most connections it can ever hold
    # (select_mux: select() cannot watch a descriptor >= FD_SETSIZE, 1024).
    connection_cap: int | None = None
    variant: str = ""  # "ipv6": the same server, started with the arguments below
    extra_args: tuple[str, ...] = ()

    def argv(self, port: int, *extra_args: str) -> list[str]:
        assert self.command is not None, f"{self.name} runs elsewhere; the suite cannot start it"
        return [part.replace(PORT, str(port)) for part in self.command] + [*self.extra_args, *extra_args]

    def shown_command(self) -> str | None:
        """The command as a reader would type it: `python`, not this machine's path to it."""
        if self.command is None:
            return None
        return shlex.join("python" if part == sys.executable else part for part in self.command)


def broken_script(name: str) -> Path:
    """Where the broken server `broken/<name>` lives: tests/broken/<name>.py."""
    return REPO_ROOT / "tests" / "broken" / f"{name.removeprefix(BROKEN_PREFIX)}.py"


def spec_for(name: str) -> ServerSpec:
    """One of our models (`python -m blocking`), or a broken server (`broken/upper`)."""
    if name.startswith(BROKEN_PREFIX):
        module = f"tests.broken.{name.removeprefix(BROKEN_PREFIX)}"
        return ServerSpec(name, (sys.executable, "-m", module, "--port", PORT), lifecycle=True)
    model = registry.model(name)
    return ServerSpec(
        name,
        (sys.executable, "-m", name, "--port", PORT),
        lifecycle=True,
        unavailable=model.missing(),
        connection_cap=model.connection_cap,
    )


def run_server(spec: ServerSpec, port: int, *args: str, timeout: float = EXIT_TIMEOUT) -> CompletedProcess:
    """Run a server that is expected to exit on its own (bad arguments, --help, a busy port)."""
    return subprocess.run(
        spec.argv(port, *args), cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )


def free_port() -> int:
    """A port nothing listens on now. Another process could take it before the server
    does; then the server fails to start, loudly, rather than a test passing wrongly."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port: int = probe.getsockname()[1]
    return port


def accepts(address: Address) -> bool:
    """Is something accepting connections at address?"""
    try:
        connect(address, timeout=1.0).close()
    except OSError:
        return False
    return True


class Server(Protocol):
    """What every test of groups 1-4 needs: an address. pid is None for a --target."""

    @property
    def address(self) -> Address: ...

    @property
    def pid(self) -> int | None: ...


@dataclass(frozen=True)
class RunningElsewhere:
    """A server the suite did not start (--target): an address and nothing more."""

    address: Address
    pid: None = None


class ServerNotReady(Exception):
    """The server exited, or stayed silent, before it was ready: never a case's own
    assertion, so a declared deviation does not excuse it."""


class ServerProcess:
    """A server the suite started, running until close(); usable as a context manager.

    The constructor returns once the server is ready: it printed its ready line, or,
    for a server that does not print one, its port accepts connections. stdout and
    stderr go to temporary files, not pipes: a pipe nobody reads fills up and would
    block a chatty server.
    """

    def __init__(self, spec: ServerSpec, *extra_args: str, ready_timeout: float = READY_TIMEOUT) -> None:
        self._stdout = tempfile.TemporaryFile()  # noqa: SIM115 -- open until close(), not one block
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115
        port = 0 if spec.lifecycle else free_port()
        self.process = subprocess.Popen(
            spec.argv(port, *extra_args),
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self._stdout,
            stderr=self._stderr,
            # Its own process group: close() can then end children it forked, too.
            start_new_session=True,
        )
        self.pid: int = self.process.pid
        self.ready_line: str | None = None
        self._closed_with: tuple[str, str] | None = None  # (stdout, stderr) once closed
        try:
            self.address = self._wait_until_ready(("127.0.0.1", port), spec.lifecycle, ready_timeout)
        except BaseException:
            self.close()
            raise

    def _wait_until_ready(self, address: Address, announces: bool, timeout: float) -> Address:
        deadline = time.monotonic() + timeout
        while True:
            if match := READY_LINE.search(self.stdout_text()):
                self.ready_line = match[0]
                return (match["ipv6"] or match["ipv4"], int(match["port"]))
            # Running first, and listening itself: with a free port picked for it, a
            # server that lost the race for that port exits, while whoever won accepts.
            if not announces and self.running() and accepts(address) and self.listens_on(address[1]):
                return address
            if not self.running():
                raise ServerNotReady(
                    f"server exited with {self.process.returncode} before it was ready; "
                    f"stderr:\n{self.stderr_text()}"
                )
            if time.monotonic() > deadline:
                raise ServerNotReady(f"not ready within {timeout}s; stderr:\n{self.stderr_text()}")
            time.sleep(0.01)

    def send_signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float) -> int:
        """The exit status; raises subprocess.TimeoutExpired if still running after timeout."""
        return self.process.wait(timeout)

    def running(self) -> bool:
        return self.process.poll() is None

    def listens_on(self, port: int) -> bool:
        """Does this server's process tree hold the listening socket on port?"""

        def listeners(process: psutil.Process) -> int:
            return sum(
                1
                for connection in process.net_connections(kind="tcp")
                if connection.status == psutil.CONN_LISTEN and connection.laddr[1] == port
            )

        return over_process_tree(self.pid, listeners) > 0

    def stdout_text(self) -> str:
        return self._closed_with[0] if self._closed_with else read_whole(self._stdout)

    def stderr_text(self) -> str:
        return self._closed_with[1] if self._closed_with else read_whole(self._stderr)

    def close(self, grace: float = STOP_TIMEOUT) -> None:
        """Stop the server politely (SIGTERM), then firmly (SIGKILL) if it has not exited
        after grace seconds; then end whatever it left running in its process group."""
        if self.running():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        if not self._closed_with:  # what it wrote stays readable, for checks after the stop
            self._closed_with = self.stdout_text(), self.stderr_text()
        self._stdout.close()
        self._stderr.close()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


def read_whole(file: BinaryIO) -> str:
    """All a child process has written to file so far. pread() leaves the file offset
    alone: the child shares it, and a seek() here would make its next write land on
    top of what it wrote before."""
    descriptor = file.fileno()
    return os.pread(descriptor, os.fstat(descriptor).st_size, 0).decode(errors="replace")


# What the `start_server` fixture gives a test: start_server("--drain-timeout", "1").
StartServer = Callable[..., ServerProcess]
# pytest's record_property fixture: record_property("measured", "...") reaches the report.
RecordProperty = Callable[[str, object], None]


# --- clients ------------------------------------------------------------------------


def connect(address: Address, *, rcvbuf: int | None = None, timeout: float = IO_TIMEOUT) -> socket.socket:
    """A client socket connected to address; each send or recv on it times out after timeout."""
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    if rcvbuf is not None:
        # Before connect(): the window scale is agreed in the handshake, from the buffer
        # size at that moment. Shrinking the buffer later can stall the window.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(timeout)
    try:
        sock.connect(address)
    except BaseException:
        sock.close()
        raise
    return sock


def connect_served(address: Address, number: int) -> socket.socket:
    """A client the server has accepted and served once. Opening many clients this way,
    one after another, keeps the listen backlog short: a burst of connects overflows a
    small backlog (socketserver's is 5), and each dropped SYN costs a second or more
    before the kernel retries it."""
    sock = connect(address)
    try:
        greeting = f"client {number}".encode()
        assert echo(sock, greeting) == greeting
    except BaseException:
        sock.close()
        raise
    return sock


def open_clients(address: Address, count: int, *, batch: int = 100) -> list[socket.socket]:
    """Many clients, connected in batches that each get one echo before the next batch
    connects: at most `batch` handshakes wait in the listen backlog at once, so none of
    them is dropped there (a dropped SYN costs a second before the kernel retries).
    A client the server turned away is still in the list, closed by the server."""
    clients: list[socket.socket] = []
    try:
        for start in range(0, count, batch):
            wave = [connect(address) for _ in range(min(batch, count - start))]
            clients += wave
            echo_on_each(wave)
    except BaseException:
        for sock in clients:
            sock.close()
        raise
    return clients


def echo_on_each(clients: list[socket.socket], *, timeout: float = 60.0) -> tuple[int, int]:
    """Send every client a message of its own at once, then read each one back.

    Returns (echoed, turned_away): a client whose connection the server ended (EOF or
    reset) counts as turned away. Wrong bytes, or silence past the timeout, fail.
    """
    expected = {sock: f"<{sock.fileno()}:{time.monotonic_ns()}>".encode() for sock in clients}
    received = {sock: b"" for sock in clients}
    turned_away = 0
    with selectors.DefaultSelector() as selector:
        for sock, message in expected.items():
            try:
                sock.sendall(message)  # a few bytes: the send buffer takes them at once
                selector.register(sock, selectors.EVENT_READ, sock)
            except ConnectionError:
                turned_away += 1
        deadline = time.monotonic() + timeout
        while selector.get_map():
            left = deadline - time.monotonic()
            ready = selector.select(left) if left > 0 else []
            assert ready, f"{len(selector.get_map())} of {len(clients)} clients got no echo in {timeout}s"
            for key, _ in ready:
                sock = key.data  # the socket itself, registered as the key's data
                try:
                    data = sock.recv(64)
                except ConnectionError:
                    data = b""
                if not data:
                    assert not received[sock], f"the echo ended early: {received[sock]!r}"
                    turned_away += 1
                    selector.unregister(sock)
                    continue
                received[sock] += data
                assert expected[sock].startswith(received[sock]), (received[sock], expected[sock])
                if received[sock] == expected[sock]:
                    selector.unregister(sock)
    return len(clients) - turned_away, turned_away


def served(address: tuple[str, int]) -> bool:
    """Is a new client served now? A refusal is an answer too: False, not an error."""
    with connect(address) as sock:
        try:
            return echo(sock, b"served?") == b"served?"
        except (ConnectionError, AssertionError, TimeoutError):  # turned away, or not yet
            return False


def connection_refused(address: Address) -> bool:
    """Does a new connection to address get refused (nobody listening any more)?"""
    try:
        probe = connect(address, timeout=1.0)
    except ConnectionRefusedError:
        return True
    except ConnectionResetError:
        return False  # the listener closed during our handshake: ask again, it is going
    probe.close()  # accepted: close at once, so the server is not left holding it
    return False


def reset(sock: socket.socket) -> None:
    """Close abruptly: SO_LINGER with a zero timeout makes close() send RST, not FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def recv_some(sock: socket.socket, limit: int, *, received: int, expected: int | None = None) -> bytes:
    """One recv() of at most limit bytes. Past the socket's timeout, the TimeoutError
    says how far the transfer got: "timed out" alone tells a reader nothing."""
    try:
        return sock.recv(limit)
    except TimeoutError:
        of = "" if expected is None else f" of {expected}"
        raise TimeoutError(
            f"got {received}{of} bytes, then neither data nor EOF for {sock.gettimeout()}s"
        ) from None


def recv_exactly(sock: socket.socket, size: int, *, timeout: float = IO_TIMEOUT) -> bytes:
    """Exactly size bytes; AssertionError on an early EOF, TimeoutError past the deadline."""
    received = bytearray()
    deadline = time.monotonic() + timeout
    while len(received) < size:
        chunk = recv_some(sock, size - len(received), received=len(received), expected=size)
        assert chunk, f"EOF after {len(received)} of {size} bytes"
        received += chunk
        if time.monotonic() > deadline:
            raise TimeoutError(f"got {len(received)} of {size} bytes in {timeout}s")
    return bytes(received)


def recv_until_eof(sock: socket.socket, *, timeout: float = IO_TIMEOUT) -> bytes:
    """Everything until the server's FIN. A reset raises ConnectionResetError."""
    received = bytearray()
    deadline = time.monotonic() + timeout
    while chunk := recv_some(sock, 1 << 16, received=len(received)):
        received += chunk
        if time.monotonic() > deadline:
            raise TimeoutError(f"no EOF within {timeout}s ({len(received)} bytes received)")
    return bytes(received)


def echo(sock: socket.socket, payload: bytes) -> bytes:
    """Send a payload small enough to fit the socket buffers, and read as much back."""
    sock.sendall(payload)
    return recv_exactly(sock, len(payload))


def send_then_half_close(sock: socket.socket, payload: bytes) -> None:
    sock.sendall(payload)
    sock.shutdown(socket.SHUT_WR)


def exchange(sock: socket.socket, payload: bytes, *, timeout: float = 30.0) -> bytes:
    """Send payload then half-close, from a thread; meanwhile read until EOF, and return it.

    Sending and reading at once is what keeps a large payload from deadlocking: a
    client that sends everything before reading fills both directions' buffers.
    """

    with ThreadPoolExecutor(max_workers=1) as pool:
        sending = pool.submit(send_then_half_close, sock, payload)
        received = recv_until_eof(sock, timeout=timeout)
        sending.result(timeout=timeout)  # re-raises what went wrong while sending
    return received


def assert_echoed(received: bytes, sent: bytes, *, start: int = 0) -> None:
    """received == sent, with a short message: pytest's own diff of megabytes is unreadable.

    start is where these bytes sit in the whole stream, to report a useful offset.
    """
    if received == sent:
        return
    common = min(len(received), len(sent))
    offset = next((i for i in range(common) if received[i] != sent[i]), common)
    raise AssertionError(
        f"echo differs at byte {start + offset}: expected {len(sent)} bytes here, received {len(received)}; "
        f"expected {sent[offset : offset + 16]!r}..., received {received[offset : offset + 16]!r}..."
    )


class PatternStream:
    """Deterministic pseudo-random bytes, addressed by offset, made 64 KiB at a time.

    A test can push hundreds of MiB and check every byte that comes back without ever
    holding the whole payload: any slice can be made again from its offset.
    """

    BLOCK = 1 << 16

    def __init__(self, seed: int) -> None:
        self.seed = seed
        # Reads move forward, so remembering the last block made spares remaking it
        # for every read that starts inside it.
        self._last_index = -1
        self._last_block = b""

    def _block(self, index: int) -> bytes:
        if index != self._last_index:
            self._last_block = random.Random(self.seed * 2**32 + index).randbytes(self.BLOCK)
            self._last_index = index
        return self._last_block

    def read(self, offset: int, size: int) -> bytes:
        parts = []
        end = offset + size
        while offset < end:
            index, start = divmod(offset, self.BLOCK)
            part = self._block(index)[start : start + end - offset]
            parts.append(part)
            offset += len(part)
        return b"".join(parts)


# A prime: pushed totals then rarely land on a multiple of any buffer size, where a
# server that loses the tail of its last buffer would get away with it.
PUSH_CHUNK = 65521


def push_until_stalled(
    sock: socket.socket, stream: PatternStream, *, limit: int, stall: float, start: int = 0
) -> int:
    """Send stream bytes from offset start without reading anything back, until limit
    bytes are sent or the socket has not been writable for `stall` seconds. Returns the
    bytes sent."""
    return push_all_until_stalled([sock], stream, limit_each=limit, stall=stall, start=start)


def push_all_until_stalled(
    clients: Sequence[socket.socket], stream: PatternStream, *, limit_each: int, stall: float, start: int = 0
) -> int:
    """Push stream bytes from offset start to every client at once, reading nothing back,
    until each has sent limit_each bytes or none has been writable for `stall` seconds.
    Returns the bytes sent in all.

    A writability wait rather than a blocking send, so a stalled push ends the loop
    instead of hanging inside sendall(). (A socket with a timeout, as connect() makes,
    sends only what fits once writable: send() returns a partial count, never blocks.)
    """
    pushed = dict.fromkeys(clients, 0)
    with selectors.DefaultSelector() as selector:
        for sock in clients:
            selector.register(sock, selectors.EVENT_WRITE, sock)
        while selector.get_map() and (ready := selector.select(stall)):
            for key, _ in ready:
                sock = key.data
                size = min(PUSH_CHUNK, limit_each - pushed[sock])
                pushed[sock] += sock.send(stream.read(start + pushed[sock], size))
                if pushed[sock] >= limit_each:
                    selector.unregister(sock)
    return sum(pushed.values())


def read_back_stream(sock: socket.socket, stream: PatternStream, size: int, *, timeout: float = 60.0) -> None:
    """Read until EOF and check it is exactly the first size bytes of stream, in order."""
    offset = 0
    deadline = time.monotonic() + timeout
    while chunk := recv_some(sock, 1 << 16, received=offset, expected=size):
        assert_echoed(chunk, stream.read(offset, len(chunk)), start=offset)
        offset += len(chunk)
        assert offset <= size, f"received more than the {size} bytes sent"
        if time.monotonic() > deadline:
            raise TimeoutError(f"no EOF within {timeout}s ({offset} of {size} bytes received)")
    assert offset == size, f"EOF after {offset} of {size} bytes"


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


# --- conditions and measurements ----------------------------------------------------


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.01) -> bool:
    """Poll predicate until it holds (True) or timeout passes (False)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


def server_holds_connection(pid: int, client_address: Address) -> bool:
    """Does the server still have a socket connected to this client address?"""

    def connections_to_client(process: psutil.Process) -> int:
        return sum(
            1
            for connection in process.net_connections(kind="tcp")
            if connection.raddr and tuple(connection.raddr)[:2] == client_address
        )

    return over_process_tree(pid, connections_to_client) > 0


def over_process_tree(pid: int, measure: Callable[[psutil.Process], Number]) -> Number:
    """A measure summed over the process and every process it started: a server that
    forks a child per client (socat fork) holds memory and sockets in all of them."""
    server = psutil.Process(pid)  # NoSuchProcess if the server itself has died
    total = measure(server)
    for child in server.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):  # exited meanwhile: it holds nothing now
            total += measure(child)
    return total


def server_rss(pid: int) -> int:
    """Resident memory of the server, in bytes."""
    return over_process_tree(pid, lambda process: int(process.memory_info().rss))


def server_fds(pid: int) -> int:
    """Open file descriptors of the server."""
    return over_process_tree(pid, lambda process: int(process.num_fds()))


def server_threads(pid: int) -> int:
    """Threads of the server."""
    return over_process_tree(pid, lambda process: int(process.num_threads()))


def server_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the server has used so far, by its own accounting."""
    return over_process_tree(pid, lambda process: float(sum(process.cpu_times()[:2])))


def set_fd_limit(pid: int, soft: int) -> None:
    """Lower (or raise, up to the hard limit) a running process's RLIMIT_NOFILE: prlimit(2)."""
    _, hard = psutil.Process(pid).rlimit(psutil.RLIMIT_NOFILE)
    psutil.Process(pid).rlimit(psutil.RLIMIT_NOFILE, (soft, hard))


@contextlib.contextmanager
def raised_fd_limit(needed: int) -> Iterator[None]:
    """Let this test process (and the servers it starts meanwhile, which inherit it)
    open `needed` descriptors, raising the soft limit up to the hard one; fail if even
    that is short. The limit is restored afterwards: later tests on this worker, and
    the servers they start, must see the limit the run began with."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        yield
        return
    assert hard == resource.RLIM_INFINITY or hard >= needed, (
        f"this test needs {needed} file descriptors; the hard limit (ulimit -Hn) is {hard}"
    )
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def quiet_baseline(server: ServerProcess, measure: Callable[[int], int]) -> int:
    """The measure once one client has been served and has gone: lazy imports, pools
    and caches are warmed up, and no connection is open."""
    with connect(server.address) as sock:
        assert echo(sock, b"warm up") == b"warm up"
        client = sock.getsockname()[:2]
    gone = wait_until(lambda: not server_holds_connection(server.pid, client), timeout=SETTLE)
    assert gone, f"the server still holds a client {SETTLE}s after it closed"
    return measure(server.pid)


def assert_back_to(server: ServerProcess, measure: Callable[[int], int], baseline: int, what: str) -> None:
    settled = wait_until(lambda: measure(server.pid) <= baseline, timeout=SETTLE)
    assert settled, f"{measure(server.pid)} {what} open {SETTLE}s after the clients left; {baseline} before"


def round_trip_times(sock: socket.socket, count: int, *, timeout: float = IO_TIMEOUT) -> list[float]:
    """Seconds each of count lock-step 1-byte echoes took; TimeoutError, saying how far
    it got, if one takes longer than timeout."""
    times = []
    previous_timeout = sock.gettimeout()
    sock.settimeout(timeout)
    try:
        for number in range(count):
            byte = bytes([number % 256])
            started = time.monotonic()
            sock.sendall(byte)
            try:
                assert sock.recv(1) == byte, f"round trip {number}: the echo was not the byte sent"
            except TimeoutError:
                raise TimeoutError(f"round trip {number}: no echo within {timeout}s") from None
            times.append(time.monotonic() - started)
    finally:
        sock.settimeout(previous_timeout)
    return times


@contextlib.contextmanager
def frozen(server: ServerProcess) -> Iterator[None]:
    """Stop the server process (SIGSTOP), so connections wait unaccepted, then go on."""
    server.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        server.send_signal(signal.SIGCONT)


def read_whole_stream(
    sock: socket.socket, stream: PatternStream, size: int, *, on_progress: Callable[[int], None]
) -> int:
    """Send the first size bytes of stream from a thread, then half-close, while reading
    the echo here; every byte read must be the stream's next. Returns the bytes echoed
    before the server's FIN or reset: a server that stops early leaves a prefix, and
    the sender's broken pipe is then expected. on_progress(received) after each read."""

    def send_all() -> None:
        with contextlib.suppress(OSError):  # the server went: what it echoed says what it took
            for offset in range(0, size, PatternStream.BLOCK):
                sock.sendall(stream.read(offset, min(PatternStream.BLOCK, size - offset)))
            sock.shutdown(socket.SHUT_WR)

    received = 0
    with ThreadPoolExecutor(max_workers=1) as pool:
        sending = pool.submit(send_all)
        with contextlib.suppress(ConnectionResetError):
            while chunk := recv_some(sock, 1 << 16, received=received, expected=size):
                assert_echoed(chunk, stream.read(received, len(chunk)), start=received)
                received += len(chunk)
                on_progress(received)
        sending.result(timeout=IO_TIMEOUT)
    return received


def child_processes(pid: int) -> int:
    """How many processes the server has started and still runs (socat forks one per client)."""
    return len(psutil.Process(pid).children(recursive=True))


def soft_fd_limit(pid: int) -> int:
    """The process's soft RLIMIT_NOFILE as its kernel enforces it: /proc/PID/limits."""
    limits = Path(f"/proc/{pid}/limits").read_text(encoding="ascii")
    [line] = [line for line in limits.splitlines() if line.startswith("Max open files")]
    return int(line.split()[3])


# Sizes where a server's buffering shows its edges: nothing, one byte, either side of
# the default 64 KiB buffer, and either side of two of them.
EDGE_SIZES = (0, 1, 65535, 65536, 65537, (128 << 10) - 1, 128 << 10, (128 << 10) + 1)


def payloads(max_size: int, *, min_size: int = 0) -> st.SearchStrategy[bytes]:
    """Payloads for hypothesis, their size drawn on purpose: an edge size half the time,
    any size up to max_size otherwise; the bytes drawn as a seed (cheap at 256 KiB) or,
    for short payloads, byte by byte, which hypothesis then shrinks well."""
    edges = [size for size in EDGE_SIZES if min_size <= size <= max_size]
    sizes = st.one_of(st.sampled_from(edges), st.integers(min_size, max_size))
    seeded = st.builds(lambda size, seed: random.Random(seed).randbytes(size), sizes, st.integers(0, 2**32))
    return st.one_of(seeded, st.binary(min_size=min_size, max_size=min(64, max_size)))


def kernel_queued(sock: socket.socket) -> int:
    """Bytes of this loopback connection the kernel holds, at both ends: each end's send
    queue (unsent or unacknowledged) and receive queue (not yet read), from
    /proc/net/tcp{,6}. What a client pushed, less this, is what the server process holds."""
    ends = {sock.getsockname()[1], sock.getpeername()[1]}
    queued = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text(encoding="ascii").splitlines()[1:]:
            fields = line.split()
            local, remote = (int(address.rsplit(":", 1)[1], 16) for address in fields[1:3])
            if {local, remote} == ends:
                queued += sum(int(queue, 16) for queue in fields[4].split(":"))  # tx_queue:rx_queue
    return queued


def ipv6_loopback_available() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True
