"""forking: blocking sockets, one process per connection (os.fork() after accept()).

How it waits: the parent waits in `selector.select()` on two sockets, the listener and
a signal wakeup; a child per connection blocks in recv() and sendall(), as a thread does
in blocking. The kernel's scheduler is again the multiplexer, over processes now.

What changes from blocking: a process, not a thread, per client. Nothing is shared after
fork() but the sockets the child inherits, so no GIL and no lock, and a child that
crashes ends one client. The parent only accepts, forks, closes its copy of the client
socket and reaps: an exited child stays a zombie until waitpid(). SIGCHLD's handler does
nothing but write to the wakeup socket, so reaping happens in the loop, not in a handler.

Stopping: children ignore SIGINT and SIGTERM (a Ctrl-C reaches the whole process group),
so the parent alone decides: it closes the listener, waits for its children to finish
for --drain-timeout, then kills the rest. A child dies with its parent (PR_SET_PDEATHSIG),
so even a second signal, or a SIGKILL, leaves no orphan serving on.
What it costs: a process per connection; each child writes pages (refcounts) that
fork() shared with the parent, and the kernel copies each page written.
"""

from __future__ import annotations

import logging
import os
import selectors
import signal
import socket
from collections.abc import Callable
from typing import NoReturn, TypeVar

from common import (
    READ_SIZE,
    STOP_SIGNALS,
    AcceptPause,
    Config,
    ConnectionLimit,
    IdleTimer,
    StopRequest,
    announce,
    earliest,
    listen,
    parse_config,
)
from forking import MODEL
from forking.orphans import die_with_parent

log = logging.getLogger("forking")

Arg = TypeVar("Arg")
Result = TypeVar("Result")


class Client:
    """One connection: its socket and address, in the child that serves it."""

    def __init__(self, sock: socket.socket, address: tuple[str, int]) -> None:
        self.sock = sock
        self.address = address


class EchoServer:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.stop = StopRequest(config.drain_timeout)
        self.limit = ConnectionLimit(config.max_connections)
        self.accept_pause = AcceptPause()
        self.idle: IdleTimer[Client] = IdleTimer(config.idle_timeout, lambda client: client.sock)
        self.children: dict[int, tuple[str, int]] = {}  # pid -> its client's address

    # --- listen -----------------------------------------------------------------------
    def listen(self) -> None:
        self.listener = listen(self.config)
        self.listener.setblocking(False)  # a readiness report can be stale: never block on it
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.listener, selectors.EVENT_READ)
        self.accept_paused = False
        self.parent = os.getpid()  # each child checks that its parent is still this one
        self.stop.handle_signals()
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)  # its wakeup byte is the point
        self.wakeup = self.stop.wakeup_socket()
        self.selector.register(self.wakeup, selectors.EVENT_READ)
        announce(self.listener)

    # --- wait -------------------------------------------------------------------------
    def serve(self) -> None:
        self.listen()
        while not self.stop.finished(len(self.children)):
            self.resume_accepting()
            # WAIT (parent): until a client connects, a signal comes (a stop; SIGCHLD: a
            # child exited), or a deadline passes (drain, accept pause).
            for key, _ in self.selector.select(earliest(self.stop.timeout(), self.accept_pause.timeout())):
                if key.fileobj is self.wakeup:
                    self.stop_accepting()
                else:
                    self.accept_client()
        self.close_all()

    # --- accept -----------------------------------------------------------------------
    def accept_client(self) -> None:
        if self.stop.requested:
            return  # a stop signal came during this pass: the listener is closing
        try:
            sock, address = self.listener.accept()
        except BlockingIOError:
            return  # the client left (or reset) before we got to it
        except OSError as error:
            # e.g. EMFILE: the client stays queued, so the listener stays readable; watched,
            # it would wake us at once, again and again. Unwatch it for a while.
            return self.pause_accepting(error)
        self.accept_pause.accepted()
        if not self.limit.admits(len(self.children)):  # one child per client: count them
            sock.close()  # at --max-connections: the client sees its connection end at once
            return
        try:
            pid = os.fork()
        except OSError as error:  # EAGAIN, ENOMEM: out of processes or memory
            sock.close()  # turned away: the client sees its connection end at once
            return self.pause_accepting(error)  # as at EMFILE: let some children end
        if pid == 0:
            self.become_child(Client(sock, address))  # never returns
        self.children[pid] = address
        sock.close()  # the child's copy serves; ours would keep the connection open after it
        log.debug("%s connected: child %d", address, pid)

    def pause_accepting(self, error: OSError) -> None:
        if self.accept_pause.after(error):
            self.selector.unregister(self.listener)
            self.accept_paused = True

    def resume_accepting(self) -> None:
        if self.accept_paused and not self.accept_pause.paused():
            self.selector.register(self.listener, selectors.EVENT_READ)
            self.accept_paused = False

    def become_child(self, client: Client) -> NoReturn:
        die_with_parent(self.parent)
        for signum in STOP_SIGNALS:  # the parent decides when a child stops (close_all)
            signal.signal(signum, signal.SIG_IGN)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.set_wakeup_fd(-1)  # the parent's wakeup socket is the parent's
        for parents in (self.selector, self.listener, self.wakeup):
            parents.close()
        status = 1
        try:
            self.serve_client(client)
            status = 0
        except BaseException:
            log.exception("%s: child %d crashed", client.address, os.getpid())
        finally:
            os._exit(status)  # not sys.exit(): never run the parent's cleanup, nor return to its loop

    # --- read and write: the whole life of one client, in its own process -------------
    def serve_client(self, client: Client) -> None:
        # --idle-timeout: recv() and send() raise TimeoutError after that long without
        # progress. (Not sendall(): its timeout bounds the whole call, and cannot resume.)
        client.sock.settimeout(self.config.idle_timeout or None)
        try:
            while True:
                # WAIT (child): until bytes arrive, or b"" for the client's FIN.
                data = self.unless_idle(client, client.sock.recv, min(READ_SIZE, self.config.buffer_size))
                if not data:
                    break  # half-close: everything it sent has already been echoed
                # WAIT (child): until the kernel took every byte. A client that does not
                # read keeps us here, so we stop reading it: backpressure.
                while data:
                    data = data[self.unless_idle(client, client.sock.send, data) :]
        except OSError as error:
            self.close_client(client, error)
        else:
            self.close_client(client)

    def unless_idle(self, client: Client, call: Callable[[Arg], Result], argument: Arg) -> Result:
        """call(argument), through as many timeouts as the client still reads what we sent."""
        while True:
            try:
                return call(argument)
            except TimeoutError:
                if not self.idle.draining(client):  # no bytes moved either way: idle
                    raise

    # --- close ------------------------------------------------------------------------
    def close_client(self, client: Client, error: OSError | None = None) -> None:
        if isinstance(error, (ConnectionError, TimeoutError)):
            log.debug("%s closed: %s", client.address, error)  # reset, broken pipe, idle: routine
        elif error is not None:
            log.warning("%s failed: %s", client.address, error)  # only this client ends
        client.sock.close()  # FIN if all input was read; RST if unread input is dropped

    def reap(self) -> None:
        """Collect every child that exited (SIGCHLD): until then each is a zombie."""
        while self.children:
            pid, status = os.waitpid(-1, os.WNOHANG)  # WAIT: never; 0 while none has exited
            if pid == 0:
                return
            address = self.children.pop(pid)
            if os.waitstatus_to_exitcode(status) != 0:  # crashed, or killed: only its client lost
                log.warning("%s: child %d ended with %d", address, pid, os.waitstatus_to_exitcode(status))

    # --- stop -------------------------------------------------------------------------
    def stop_accepting(self) -> None:
        # A handled signal came: SIGCHLD (reap), or a stop. Drain the wakeup socket (or it
        # stays readable). A second stop signal exits at once, in its handler.
        self.wakeup.recv(4096)
        self.reap()
        if not self.stop.requested or self.listener.fileno() == -1:
            return
        if not self.accept_paused:  # a paused listener is unwatched already
            self.selector.unregister(self.listener)
        self.accept_paused = False  # closed: never watch it again
        self.listener.close()

    def close_all(self) -> None:
        if self.children:
            log.warning("drain time over: closing %d connection(s)", len(self.children))
        for pid in self.children:  # they ignore SIGTERM: the drain is over, end them
            os.kill(pid, signal.SIGKILL)  # the kernel closes their sockets, as close() would
        for pid in self.children:
            os.waitpid(pid, 0)  # WAIT: a moment, for each to die; then no zombie is left
        self.selector.close()


def main(argv: list[str] | None = None) -> int:
    config = parse_config(MODEL, __doc__ or "", argv)
    EchoServer(config).serve()
    return 0
