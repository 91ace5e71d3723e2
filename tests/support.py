"""Helpers the conformance tests share: run a server, talk to it, wait for conditions.

Every wait here is bounded. A server under test may be broken in any way (silent,
slow, crashed), and a helper that blocks forever turns a clear failure into a hang.
"""

from __future__ import annotations

import os
import random
import re
import selectors
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType

import psutil  # type: ignore[import-untyped]  # no stubs in the test extras (types-psutil)

REPO_ROOT = Path(__file__).resolve().parent.parent
MODELS = ("blocking", "nonblocking", "select_mux", "selectors_mux", "epoll_mux", "asyncio_io")
BROKEN_PREFIX = "broken/"

# Generous on purpose: on a loaded 2-core machine a slow answer is not a wrong answer.
# Tests that check promptness assert their own, tighter, bounds.
READY_TIMEOUT = 10.0
IO_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0  # a SIGTERM'd server may drain for the default 5 s before it exits

READY_LINE = re.compile(r"listening on (?:\[(?P<ipv6>[^\]]+)\]|(?P<ipv4>[^:\s]+)):(?P<port>\d+)")

Address = tuple[str, int]


def broken_script(name: str) -> Path:
    """Where the broken server `broken/<name>` lives: tests/broken/<name>.py."""
    return REPO_ROOT / "tests" / "broken" / f"{name.removeprefix(BROKEN_PREFIX)}.py"


def command_for(name: str) -> list[str]:
    """The argv prefix that runs a model (`python -m blocking`) or a broken server."""
    if name.startswith(BROKEN_PREFIX):
        return [sys.executable, "-m", f"tests.broken.{name.removeprefix(BROKEN_PREFIX)}"]
    return [sys.executable, "-m", name]


def run_server(
    command: Sequence[str], *args: str, timeout: float = READY_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """Run a server that is expected to exit on its own (bad arguments, --help, a busy port)."""
    return subprocess.run(
        [*command, *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )


class ServerProcess:
    """A server started with `--port 0`, running until close(); usable as a context manager.

    The constructor returns once the server has printed its ready line, so `address`
    is connectable at once. stderr goes to a temporary file rather than a pipe: a pipe
    nobody reads fills up and would block a chatty server.
    """

    def __init__(
        self, command: Sequence[str], *extra_args: str, ready_timeout: float = READY_TIMEOUT
    ) -> None:
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 -- open until close(), not one block
        self.process = subprocess.Popen(
            [*command, "--port", "0", *extra_args],
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        self.pid = self.process.pid
        try:
            self.ready_line = self._read_ready_line(ready_timeout)
        except BaseException:
            self.close()
            raise
        match = READY_LINE.fullmatch(self.ready_line)
        if match is None:
            self.close()
            raise AssertionError(f"not a ready line: {self.ready_line!r}")
        self.address: Address = (match["ipv6"] or match["ipv4"], int(match["port"]))

    def _read_ready_line(self, timeout: float) -> str:
        # Raw os.read() on the pipe, watched by a selector: a readline() could block
        # forever on a server that never prints, and the deadline must still hold.
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        received = b""
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while b"\n" not in received:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no ready line within {timeout}s; stderr:\n{self.stderr_text()}")
                if not selector.select(remaining):
                    continue
                chunk = os.read(fd, 4096)
                if not chunk:
                    self.process.wait(STOP_TIMEOUT)
                    raise AssertionError(
                        f"server exited with {self.process.returncode} before it was ready; "
                        f"stderr:\n{self.stderr_text()}"
                    )
                received += chunk
        line, self._stdout_after_ready = received.split(b"\n", 1)
        return line.decode()

    def send_signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float) -> int:
        """The exit status; raises subprocess.TimeoutExpired if still running after timeout."""
        return self.process.wait(timeout)

    def running(self) -> bool:
        return self.process.poll() is None

    def stderr_text(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def stdout_after_ready(self) -> bytes:
        """Everything the server printed after its ready line; call once it has exited."""
        assert self.process.stdout is not None and not self.running()
        rest = self._stdout_after_ready
        while chunk := os.read(self.process.stdout.fileno(), 4096):
            rest += chunk
        return rest

    def close(self) -> None:
        """Stop the server politely (SIGTERM), then firmly (SIGKILL) if it does not exit."""
        if self.running():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._stderr.close()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


# What the `start_server` fixture gives a test: start_server("--drain-timeout", "1").
StartServer = Callable[..., ServerProcess]


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


def recv_exactly(sock: socket.socket, size: int, *, timeout: float = IO_TIMEOUT) -> bytes:
    """Exactly size bytes; AssertionError on an early EOF, TimeoutError past the deadline."""
    received = bytearray()
    deadline = time.monotonic() + timeout
    while len(received) < size:
        if time.monotonic() > deadline:
            raise TimeoutError(f"got {len(received)} of {size} bytes in {timeout}s")
        chunk = sock.recv(size - len(received))
        assert chunk, f"EOF after {len(received)} of {size} bytes"
        received += chunk
    return bytes(received)


def recv_until_eof(sock: socket.socket, *, timeout: float = IO_TIMEOUT) -> bytes:
    """Everything until the server's FIN. A reset raises ConnectionResetError."""
    received = bytearray()
    deadline = time.monotonic() + timeout
    while chunk := sock.recv(1 << 16):
        received += chunk
        if time.monotonic() > deadline:
            raise TimeoutError(f"no EOF within {timeout}s ({len(received)} bytes received)")
    return bytes(received)


def echo(sock: socket.socket, payload: bytes) -> bytes:
    """Send a payload small enough to fit the socket buffers, and read as much back."""
    sock.sendall(payload)
    return recv_exactly(sock, len(payload))


def exchange(sock: socket.socket, payload: bytes, *, timeout: float = 30.0) -> bytes:
    """Send payload then half-close, from a thread; meanwhile read until EOF, and return it.

    Sending and reading at once is what keeps a large payload from deadlocking: a
    client that sends everything before reading fills both directions' buffers.
    """

    def send_then_half_close() -> None:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)

    with ThreadPoolExecutor(max_workers=1) as pool:
        sending = pool.submit(send_then_half_close)
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


def push_until_stalled(sock: socket.socket, stream: PatternStream, *, limit: int, stall: float) -> int:
    """Send stream bytes without reading anything back, until limit bytes are sent or
    the socket has not been writable for `stall` seconds. Returns the bytes sent.

    A writability wait rather than a blocking send, so a stalled push ends the loop
    instead of hanging inside sendall().
    """
    pushed = 0
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_WRITE)
        while pushed < limit and selector.select(stall):
            pushed += sock.send(stream.read(pushed, min(PUSH_CHUNK, limit - pushed)))
    return pushed


def read_back_stream(sock: socket.socket, stream: PatternStream, size: int, *, timeout: float = 60.0) -> None:
    """Read until EOF and check it is exactly the first size bytes of stream, in order."""
    offset = 0
    deadline = time.monotonic() + timeout
    while chunk := sock.recv(1 << 16):
        assert_echoed(chunk, stream.read(offset, len(chunk)), start=offset)
        offset += len(chunk)
        assert offset <= size, f"received more than the {size} bytes sent"
        if time.monotonic() > deadline:
            raise TimeoutError(f"no EOF within {timeout}s ({offset} of {size} bytes received)")
    assert offset == size, f"EOF after {offset} of {size} bytes"


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
    """Does the server process still have a socket connected to this client address?"""
    return any(
        connection.raddr and tuple(connection.raddr)[:2] == client_address
        for connection in psutil.Process(pid).net_connections(kind="tcp")
    )


def server_rss(pid: int) -> int:
    """Resident memory of the process, in bytes."""
    return int(psutil.Process(pid).memory_info().rss)
