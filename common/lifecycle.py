"""Start and stop, the same in every model: the listening socket, the ready line, and
what SIGINT/SIGTERM mean.

Stopping: the first signal asks for a graceful stop. The server closes its listener,
lets open connections finish what they owe for up to `--drain-timeout` seconds, closes
the rest and exits 0. A second signal exits at once (status 128 + signal number, as a
shell reports a process killed by that signal).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable

from common.config import Config

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

log = logging.getLogger("stop")


def listen(config: Config) -> socket.socket:
    """Bind and listen, the same way in every model; exit 1 with one line if we cannot."""
    where = host_and_port(config.host, config.port)
    try:
        # getaddrinfo picks the family, so "::1" and "localhost" work as well as "127.0.0.1".
        family, _, _, _, address = socket.getaddrinfo(
            config.host, config.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        # "::" means every interface, as 0.0.0.0 does: IPv4 clients too. Linux's default
        # (net.ipv6.bindv6only = 0) would allow them, but create_server sets IPV6_V6ONLY
        # unless asked for dual stack.
        dual_stack = family == socket.AF_INET6 and address[0] == "::" and socket.has_dualstack_ipv6()
        # create_server sets SO_REUSEADDR (POSIX), so a restart does not wait out TIME_WAIT.
        return socket.create_server(
            address,
            family=family,
            backlog=config.backlog,
            reuse_port=config.reuse_port,
            dualstack_ipv6=dual_stack,
        )
    except OSError as error:
        # create_server() appends the address to strerror; the errno alone says it plainly.
        # (A failed name lookup, socket.gaierror, has a negative errno and its own text.)
        reason = os.strerror(error.errno) if error.errno and error.errno > 0 else error.strerror
        raise SystemExit(f"error: cannot listen on {where}: {reason}") from None
    except UnicodeError as error:  # a host name the idna codec refuses, such as "a..b"
        raise SystemExit(f"error: cannot listen on {where}: not a host name ({error})") from None


def announce(listener: socket.socket) -> None:
    """Print the one ready line, `listening on HOST:PORT`, with the port really bound."""
    host, port = listener.getsockname()[:2]
    print(f"listening on {host_and_port(host, port)}", flush=True)


def host_and_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"  # IPv6 bracketed, as in URLs


class StopRequest:
    """The stop switch that SIGINT and SIGTERM flip, and the drain deadline it starts."""

    def __init__(self, drain_timeout: float) -> None:
        self.drain_timeout = drain_timeout
        self.requested = False
        self.deadline = 0.0  # set by the first stop signal

    def request(self, signum: int) -> None:
        """First stop signal: start draining. Second: exit at once."""
        name = signal.Signals(signum).name
        if self.requested:
            log.warning("%s again: exiting now", name)
            sys.stderr.flush()
            os._exit(128 + signum)  # skips cleanup on purpose: the user asked twice
        self.requested = True
        self.deadline = time.monotonic() + self.drain_timeout
        log.info("%s: no longer accepting; draining for up to %gs", name, self.drain_timeout)

    def timeout(self) -> float | None:
        """How long a wait may last: forever before a stop, then until the drain deadline."""
        if not self.requested:
            return None
        return max(0.0, self.deadline - time.monotonic())

    def finished(self, open_connections: int) -> bool:
        """A stop was requested, and every connection is gone or the drain time is up."""
        return self.requested and (open_connections == 0 or self.timeout() == 0)

    def handle_signals(self, then: Callable[[], None] = lambda: None) -> None:
        """Route SIGINT and SIGTERM to request(), then call `then`.

        Python runs signal handlers in the main thread between two bytecodes, so `then`
        may raise to break the main thread out of a blocking call such as accept().
        """

        def handler(signum: int, frame: object) -> None:
            self.request(signum)
            then()

        for signum in STOP_SIGNALS:
            signal.signal(signum, handler)

    def wakeup_socket(self) -> socket.socket:
        """A socket that turns readable when a stop signal arrives, for a loop to watch.

        select(), poll() and epoll_wait() are retried after a Python signal handler
        returns (PEP 475), so a handler alone cannot end the wait. The C-level handler
        also writes the signal number to the other end of this pair (set_wakeup_fd);
        a multiplexing loop then sees the signal as one more readable socket.
        """
        reader, self._wakeup_writer = socket.socketpair()  # the writer must outlive this call
        self._wakeup_writer.setblocking(False)  # set_wakeup_fd requires it: a handler must never block
        reader.setblocking(False)
        signal.set_wakeup_fd(self._wakeup_writer.fileno(), warn_on_full_buffer=False)
        return reader
