"""The limits every model enforces the same way: --max-connections, --idle-timeout, and
what to do when accept() fails for want of descriptors or memory.

Deciding is shared; acting is not. Each server.py does its own accept, close and wait:
these classes only say whether, which and how long, so a reader of a server still sees
every socket call it makes.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import socket
import struct
import termios
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, Protocol, TypeVar

log = logging.getLogger("limits")

# How long to stop accepting after accept() failed for want of resources. trio sleeps
# 0.1 s, nginx 0.5 s, asyncio 1 s; a tenth of a second keeps a waiting client's delay
# short and the retries cheap: ten accept() calls a second, not a spinning core.
ACCEPT_RETRY_DELAY = 0.1

# The most accept() calls in one go, whatever --backlog is (the kernel's queue length,
# which may be 0): enough that a crowd of new clients need not wait for the next pass,
# few enough that a batch failing for want of descriptors costs little (asyncio tries
# and reports every accept() of its batch).
ACCEPT_BATCH = 100

# struct tcp_info (linux/tcp.h): where tcpi_bytes_acked sits, and the size up to it.
TCP_INFO_BYTES_ACKED = 120
TCP_INFO_SIZE = TCP_INFO_BYTES_ACKED + 8

# The most often one kind of refusal is logged: one line a second, with a count, however
# many clients a flood (or clients churning at --max-connections) brings.
REFUSAL_LOG_INTERVAL = 1.0

# accept() errors about the one connection it was taking, not about the server (see
# man 2 accept): carry on at once. BSD and macOS report a client reset while still in
# the backlog as ECONNABORTED; Linux hands such a connection over, and its first recv()
# raises ECONNRESET instead.
CLIENT_GONE = {
    errno.ECONNABORTED,
    errno.EPROTO,
    errno.EPERM,  # a firewall rule refused it
    errno.ENETDOWN,
    errno.ENETUNREACH,
    errno.EHOSTDOWN,
    errno.EHOSTUNREACH,
    errno.ENOPROTOOPT,
    errno.EOPNOTSUPP,
}


class Refusals:
    """Clients turned away for one reason, logged at most once per REFUSAL_LOG_INTERVAL,
    with how many since the last line: a line per refused client would let a flood of
    clients flood the log. The next client accepted, refused or not, once that time is
    up, tells those not yet told."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.unlogged = 0
        self.quiet_until = 0.0  # time.monotonic() before which no line is written

    def refuses(self, refused: bool) -> bool:
        """Count this client if refused, log the count if due; return refused."""
        self.unlogged += refused
        now = time.monotonic()
        if self.unlogged and now >= self.quiet_until:
            log.warning("%s: turned %d new client(s) away", self.reason, self.unlogged)
            self.unlogged = 0
            self.quiet_until = now + REFUSAL_LOG_INTERVAL
        return refused


class ConnectionLimit:
    """Whether one more client may be served; the refused are logged by Refusals."""

    def __init__(self, maximum: int) -> None:
        self.maximum = maximum
        self.refusals = Refusals(f"at --max-connections {maximum}")

    def admits(self, open_connections: int) -> bool:
        return not self.refusals.refuses(open_connections >= self.maximum)


class AcceptPause:
    """After accept() fails: how long to stop accepting, with one log line per spell.

    Out of descriptors (EMFILE, ENFILE) or memory (ENOBUFS, ENOMEM), accept() fails
    while the client stays queued, so the listener stays readable: retrying at once
    would spin a core on the same error, and logging each failure would flood the log.
    The strategy of trio, nginx and asyncio: stop accepting for ACCEPT_RETRY_DELAY,
    then try again; the queued clients wait in the backlog until descriptors free up.
    (libuv instead keeps a spare descriptor, closes it to accept and at once close one
    client, then reopens it: the client learns sooner, but is turned away.)
    """

    def __init__(self, retry_delay: float = ACCEPT_RETRY_DELAY) -> None:
        self.retry_delay = retry_delay
        self.until = 0.0  # time.monotonic() at which to accept again
        self.failing = False

    def after(self, error: OSError | RuntimeError) -> float:
        """Seconds to stop accepting after this error: 0 when only that client is gone.
        (A RuntimeError: a thread-per-client server could not start the client's thread.)"""
        if isinstance(error, OSError) and error.errno in CLIENT_GONE:
            log.debug("accept: client gone: %s", error)
            return 0.0
        if not self.failing:
            log.error("cannot take a client: %s; trying every %gs until it works", error, self.retry_delay)
            self.failing = True
        self.until = time.monotonic() + self.retry_delay
        return self.retry_delay

    def accepted(self) -> None:
        if self.failing:
            log.warning("accepting again")
            self.failing = False

    def paused(self) -> bool:
        return time.monotonic() < self.until

    def timeout(self) -> float | None:
        """How long a wait may last before accepting resumes; None when not paused."""
        left = self.until - time.monotonic()
        return left if left > 0 else None


Client = TypeVar("Client", bound=Hashable)
Arg = TypeVar("Arg")
Result = TypeVar("Result")


class IdleTimer(Generic[Client]):
    """Which clients have moved no bytes either way for --idle-timeout seconds.

    "No bytes moved" as the client sees it. A client reading slowly drains the kernel's
    send queue long after our last send() (a loop hears of it only once a third of the
    send buffer is free), so a client that looks idle is asked about: if it acknowledged
    more bytes since the last look (or, at the first look, is still owed some), it gets
    another timeout. So a client owed bytes that reads none is closed one to two
    timeouts after it stopped; one owed nothing, after one.

    Clients are kept in the order they were last active (an OrderedDict: touching one
    moves it to the end, and the first is found at once however many moved), so the
    first is always the idlest: finding the expired ones and the time to the next
    expiry costs O(expired), not O(clients). An idle_timeout of 0 turns the timer off.
    """

    def __init__(self, idle_timeout: float, socket_of: Callable[[Client], TCPSocket]) -> None:
        self.idle_timeout = idle_timeout
        self.socket_of = socket_of  # the client's socket, whose send queue we look at
        self.last_active: OrderedDict[Client, float] = OrderedDict()
        self.acked: dict[Client, int] = {}  # bytes it had acknowledged when last found idle

    def touch(self, client: Client) -> None:
        if self.idle_timeout:
            self.last_active[client] = time.monotonic()
            self.last_active.move_to_end(client)

    def forget(self, client: Client) -> None:
        self.last_active.pop(client, None)
        self.acked.pop(client, None)

    def draining(self, client: Client) -> bool:
        """Is the client still taking what we sent it, however slowly?"""
        sock = self.socket_of(client)
        acked = bytes_acknowledged(sock)
        before = self.acked.get(client)
        self.acked[client] = acked
        return acked > before if before is not None else unacknowledged(sock) > 0

    def unless_idle(self, client: Client, call: Callable[[Arg], Result], argument: Arg) -> Result:
        """call(argument) on a blocking socket whose timeout is idle_timeout, through as many
        timeouts as the client still reads what we sent (for a thread or process per client)."""
        while True:
            try:
                return call(argument)
            except TimeoutError:
                if not self.draining(client):  # no bytes moved either way: idle
                    raise

    def expired(self) -> list[Client]:
        """The clients idle for idle_timeout or longer, idlest first; they leave the timer."""
        now = time.monotonic()
        idle = []
        while self.last_active:
            client, last_active = next(iter(self.last_active.items()))
            if last_active > now - self.idle_timeout:
                break
            if self.draining(client):
                self.touch(client)  # still reading: bytes moved
            else:
                self.forget(client)
                idle.append(client)
        return idle

    def timeout(self) -> float | None:
        """How long a wait may last before the next client may expire; None if none can."""
        for last_active in self.last_active.values():  # only the first one counts
            return max(0.0, last_active + self.idle_timeout - time.monotonic())
        return None


class TCPSocket(Protocol):
    """What the idle timer asks of a client's socket (a socket, or asyncio's wrapper)."""

    def fileno(self) -> int: ...
    def getsockopt(self, level: int, option: int, size: int, /) -> bytes: ...


def bytes_acknowledged(sock: TCPSocket) -> int:
    """Bytes the peer has acknowledged so far: TCP_INFO's tcpi_bytes_acked (Linux 4.1).
    An acknowledgement means the bytes reached its receive buffer, which has room only
    while its reader reads. 0 where the kernel does not say."""
    with contextlib.suppress(OSError, AttributeError):
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, TCP_INFO_SIZE)
        if len(info) >= TCP_INFO_SIZE:
            acked: int = struct.unpack_from("Q", info, TCP_INFO_BYTES_ACKED)[0]
            return acked
    return 0


def unacknowledged(sock: TCPSocket) -> int:
    """Bytes in the socket's send queue the peer has not acknowledged: SIOCOUTQ (Linux's
    TIOCOUTQ, on a socket). 0 where it cannot be asked, or once closed (fileno() -1)."""
    with contextlib.suppress(OSError, ValueError):
        queued: int = struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0]
        return queued
    return 0


def earliest(*timeouts: float | None) -> float | None:
    """The shortest of several wait timeouts, where None means no limit."""
    limits = [timeout for timeout in timeouts if timeout is not None]
    return min(limits) if limits else None
