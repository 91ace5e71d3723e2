"""forking: blocking sockets, one process per connection (os.fork() after accept()).

How it waits: a child per client blocks in recv() and sendall(), as a thread does in
blocking; the parent waits in `selector.select()` on the listener and a signal wakeup.
What changes from blocking: a process, not a thread, per client. After fork() the two
share nothing but inherited descriptors: no GIL, no lock, and a crash ends one client.
The parent accepts, forks, closes its copy of the socket and reaps: an exited child is
a zombie until waitpid(). SIGCHLD only wakes the loop, which reaps; no handler does.
Stopping: children ignore SIGINT and SIGTERM (Ctrl-C signals the whole group); the parent
closes its listener, waits --drain-timeout for them, then kills the rest. Each child dies
with its parent (PR_SET_PDEATHSIG): a second signal, even SIGKILL, leaves no orphan.
Cost: a process per client, and each page its interpreter writes (refcounts) is copied.
"""

from __future__ import annotations

import logging
import os
import selectors
import signal
import socket
from typing import NoReturn

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
from common.orphans import die_with_parent
from forking import MAX_CHILDREN, MODEL

log = logging.getLogger("forking")


class Client:
    """One connection: its socket and address, in the child that serves it."""

    def __init__(self, sock: socket.socket, address: tuple[str, int]) -> None:
        self.sock = sock
        self.address = address


class EchoServer:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.stop = StopRequest(config.drain_timeout)
        self.limit = ConnectionLimit(min(config.max_connections, MAX_CHILDREN))  # see MAX_CHILDREN
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
            # WAIT (parent): for a client, a signal (a stop; SIGCHLD) or a deadline.
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
        except OSError as error:  # e.g. EMFILE: the client stays queued, the listener readable
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
        signal.set_wakeup_fd(-1)  # the parent's wakeup socket is the parent's
        for parents in (self.selector, self.listener, self.wakeup):
            parents.close()
        try:
            self.serve_client(client)
        except BaseException:
            log.exception("%s: child %d crashed", client.address, os.getpid())
            os._exit(1)
        os._exit(0)  # not sys.exit(): never run the parent's cleanup, nor return to its loop

    # --- read and write: the whole life of one client, in its own process -------------
    def serve_client(self, client: Client) -> None:
        # --idle-timeout: recv() and send() raise TimeoutError after that long without
        # progress. (Not sendall(): its timeout bounds the whole call, and cannot resume.)
        client.sock.settimeout(self.config.idle_timeout or None)
        try:
            while True:
                # WAIT (child): until bytes arrive, or b"" for the client's FIN.
                data = self.idle.unless_idle(
                    client, client.sock.recv, min(READ_SIZE, self.config.buffer_size)
                )
                if not data:
                    break  # half-close: everything it sent has already been echoed
                # WAIT (child): until the kernel took every byte. A client that does not
                # read keeps us here, so we stop reading it: backpressure.
                while data:
                    data = data[self.idle.unless_idle(client, client.sock.send, data) :]
        except OSError as error:
            self.close_client(client, error)
        else:
            self.close_client(client)

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
        self.wakeup.recv(4096)  # a signal's byte, or it stays readable: SIGCHLD, or a stop
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
