"""The limits every model enforces the same way: --max-connections, --idle-timeout, and
what to do when accept() fails for want of descriptors or memory.

Deciding is shared; acting is not. Each server.py does its own accept, close and wait:
these classes only say whether, which and how long, so a reader of a server still sees
every socket call it makes.
"""

from __future__ import annotations

import errno
import logging
import time
from collections.abc import Hashable
from typing import Generic, TypeVar

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


class ConnectionLimit:
    """Whether one more client may be served, with one log line per spell at the limit.

    A line per refused client would let a flood of connections flood the log too; one
    line when the limit is reached says the same, and the next admitted client ends
    the spell, so the next time the limit is reached is logged again.
    """

    def __init__(self, maximum: int) -> None:
        self.maximum = maximum
        self.refusing = False

    def admits(self, open_connections: int) -> bool:
        if open_connections < self.maximum:
            self.refusing = False
            return True
        if not self.refusing:
            log.warning("at --max-connections %d: closing new clients until one leaves", self.maximum)
            self.refusing = True
        return False


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

    def after(self, error: OSError) -> float:
        """Seconds to stop accepting after this error: 0 when only that client is gone."""
        if error.errno in CLIENT_GONE:
            log.debug("accept: client gone: %s", error)
            return 0.0
        if not self.failing:
            log.error("accept failed: %s; retrying every %gs until it succeeds", error, self.retry_delay)
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


class IdleTimer(Generic[Client]):
    """Which clients have had no traffic in either direction for --idle-timeout seconds.

    Clients are kept in the order they were last active (a dict keeps insertion order;
    touching one moves it to the end), so the first is always the idlest: finding the
    expired ones and the time to the next expiry costs O(expired), not O(clients).
    An idle_timeout of 0 turns the timer off.
    """

    def __init__(self, idle_timeout: float) -> None:
        self.idle_timeout = idle_timeout
        self.last_active: dict[Client, float] = {}

    def touch(self, client: Client) -> None:
        if self.idle_timeout:
            self.last_active.pop(client, None)
            self.last_active[client] = time.monotonic()

    def forget(self, client: Client) -> None:
        self.last_active.pop(client, None)

    def expired(self) -> list[Client]:
        """The clients idle for idle_timeout or longer, idlest first."""
        oldest_allowed = time.monotonic() - self.idle_timeout
        idle = []
        for client, last_active in self.last_active.items():
            if last_active > oldest_allowed:
                break
            idle.append(client)
        return idle

    def timeout(self) -> float | None:
        """How long a wait may last before the next client may expire; None if none can."""
        for last_active in self.last_active.values():  # only the first one counts
            return max(0.0, last_active + self.idle_timeout - time.monotonic())
        return None


def earliest(*timeouts: float | None) -> float | None:
    """The shortest of several wait timeouts, where None means no limit."""
    limits = [timeout for timeout in timeouts if timeout is not None]
    return min(limits) if limits else None
