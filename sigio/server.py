"""sigio: one thread, the kernel queues a signal naming each socket that changed.

How it waits: F_SETOWN, O_ASYNC and F_SETSIG make Linux queue a real-time signal per
event on a socket, with si_fd (which) and si_band (what). Blocked, with SIGIO and the
stop signals, they wait in the queue and no handler runs: `sigtimedwait()` (siginfo.py:
the stdlib drops si_fd), the one place this server blocks, takes them one at a time.

What changes from epoll_mux: nothing keeps our interest; a signal says "something
happened", not "still readable" (edge-like). A client stays on our `ready` list until
recv() raises EAGAIN, one recv() a turn, all before the next wait: none starves. POLLOUT
comes only after a short send(). Costs: a signal and a syscall per event; a full queue
(RLIMIT_SIGPENDING) brings plain SIGIO, which names no socket: all get a turn.
"""

from __future__ import annotations

import fcntl
import logging
import os
import select
import signal
import socket

from common import (
    ACCEPT_BATCH,
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
from sigio import MODEL
from sigio.siginfo import Event, blocked, sigtimedwait

log = logging.getLogger("sigio")

SIGNAL_BATCH = 1000  # queued signals taken in one pass before the ready clients get turns


class Client:
    """One connection: its socket, the bytes we owe it, and whether it has half-closed."""

    def __init__(self, sock: socket.socket, address: tuple[str, int]) -> None:
        self.sock = sock
        self.address = address
        self.outbuf = bytearray()
        self.eof = False  # the client called shutdown(SHUT_WR): it will send nothing more
        self.readable = True  # a signal came, and no recv() has raised EAGAIN since


class EchoServer:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.stop = StopRequest(config.drain_timeout)
        self.limit = ConnectionLimit(config.max_connections)
        self.accept_pause = AcceptPause()
        self.idle: IdleTimer[Client] = IdleTimer(config.idle_timeout, lambda client: client.sock)
        self.clients: dict[int, Client] = {}  # a signal names a descriptor, not a socket
        self.ready: dict[int, Client] = {}  # to serve before the next wait, in turn

    # --- listen -----------------------------------------------------------------------
    def listen(self) -> None:
        self.listener = listen(self.config)
        self.signals = blocked([signal.SIGRTMIN, signal.SIGIO, *STOP_SIGNALS])  # queued until taken
        self.signal_on_events(self.listener)
        self.accept_due = True  # a client may have come before O_ASYNC: look once
        announce(self.listener)

    def signal_on_events(self, sock: socket.socket) -> None:
        fcntl.fcntl(sock, fcntl.F_SETOWN, os.getpid())  # to this process
        fcntl.fcntl(sock, fcntl.F_SETSIG, signal.SIGRTMIN)  # queued, with si_fd and si_band
        fcntl.fcntl(sock, fcntl.F_SETFL, os.O_NONBLOCK | os.O_ASYNC)  # a new socket has no other to keep

    # --- wait -------------------------------------------------------------------------
    def serve(self) -> None:
        self.listen()
        while not self.stop.finished(len(self.clients)):
            timeout = earliest(self.stop.timeout(), self.accept_pause.timeout(), self.idle.timeout())
            if self.ready or (self.accept_due and not self.accept_pause.paused()):
                timeout = 0  # they come first: take only what is queued already
            # WAIT: the one place this server blocks, until a signal is queued or a deadline passes.
            for _ in range(SIGNAL_BATCH):  # then the rest of the queue, without waiting
                if (event := sigtimedwait(self.signals, timeout)) is None:
                    break
                timeout = 0
                self.on_signal(event)
            turns, self.ready = self.ready, {}
            for fd, client in turns.items():  # one turn each: no client starves the rest
                if client.readable and self.wants_to_read(client):
                    self.read(client)
                if fd in self.clients:  # read() may have closed it
                    self.write(client)  # what it is owed: most often all of it fits
                if fd in self.clients and client.readable and self.wants_to_read(client):
                    self.ready[fd] = client  # more may be queued: another turn, after the others
            if self.accept_due and not self.accept_pause.paused():
                self.accept_client()
            for client in self.idle.expired():
                self.close_client(client, TimeoutError(f"idle for {self.config.idle_timeout:g}s"))
        self.close_all()

    def on_signal(self, event: Event) -> None:
        if event.signo in STOP_SIGNALS:
            self.stop_accepting(event.signo)
        elif event.signo == signal.SIGIO:  # the queue was full: events lost, sockets unnamed
            self.accept_due = not self.stop.requested
            for fd in self.clients:
                self.on_signal(Event(signal.SIGRTMIN, fd, select.POLLIN))  # as if each had said so
        elif event.fd == self.listener.fileno():  # -1 once a stop closed it
            self.accept_due = True
        elif client := self.clients.get(event.fd):  # None: closed since it was queued
            client.readable |= not event.band & select.POLLOUT  # input, EOF or an error
            self.ready[event.fd] = client

    # --- accept -----------------------------------------------------------------------
    def accept_client(self) -> None:
        for _ in range(ACCEPT_BATCH):  # edge-like: take every queued client, a batch a pass
            try:
                sock, address = self.listener.accept()
            except BlockingIOError:
                self.accept_due = False  # none left: the next one brings its own signal
                return
            except OSError as error:
                self.accept_pause.after(error)  # e.g. EMFILE: still queued, no new signal: retry later
                return
            self.accept_pause.accepted()
            if not self.limit.admits(len(self.clients)):
                sock.close()  # at --max-connections: the client sees its connection end at once
                continue
            self.signal_on_events(sock)  # accept() does not pass on O_ASYNC, owner or signal
            self.clients[sock.fileno()] = self.ready[sock.fileno()] = client = Client(sock, address)
            self.idle.touch(client)  # ready: bytes that came before O_ASYNC signalled nothing
            log.debug("%s connected", address)

    # --- read -------------------------------------------------------------------------
    def wants_to_read(self, client: Client) -> bool:
        return not client.eof and len(client.outbuf) < self.config.buffer_size

    def read(self, client: Client) -> None:
        room = self.config.buffer_size - len(client.outbuf)  # > 0, or we would not be reading
        try:
            data = client.sock.recv(min(READ_SIZE, room))
        except BlockingIOError:
            client.readable = False  # drained: only a new signal will say there is more
            return
        except OSError as error:
            return self.close_client(client, error)
        if data:
            client.outbuf += data
        else:
            client.eof = True  # half-close: nothing more will come, but we still owe outbuf
        self.idle.touch(client)

    # --- write ------------------------------------------------------------------------
    def write(self, client: Client) -> None:
        if client.outbuf:
            try:
                sent = client.sock.send(client.outbuf)  # may take only part: keep the rest
                self.idle.touch(client)  # it took at least one byte
            except BlockingIOError:
                sent = 0
            except OSError as error:
                return self.close_client(client, error)
            del client.outbuf[:sent]  # a short send: the kernel signals POLLOUT once there is room
        if client.eof and not client.outbuf:
            self.close_client(client)  # owed nothing after half-close: we are done

    # --- close ------------------------------------------------------------------------
    def close_client(self, client: Client, error: OSError | None = None) -> None:
        if isinstance(error, (ConnectionError, TimeoutError)):
            log.debug("%s closed: %s", client.address, error)  # reset, broken pipe, idle: routine
        elif error is not None:
            log.warning("%s failed: %s", client.address, error)  # only this client ends
        del self.clients[client.sock.fileno()]
        self.ready.pop(client.sock.fileno(), None)  # signals still queued for it are dropped
        self.idle.forget(client)
        client.sock.close()  # FIN if all input was read; RST if unread input is dropped

    # --- stop -------------------------------------------------------------------------
    def stop_accepting(self, signum: int) -> None:
        self.stop.request(signum)  # taken from the queue like any event; a second exits in there
        self.listener.close()
        self.accept_due = False

    def close_all(self) -> None:
        if self.clients:
            log.warning("drain time over: closing %d connection(s)", len(self.clients))
        for client in list(self.clients.values()):
            self.close_client(client)


def main(argv: list[str] | None = None) -> int:
    config = parse_config(MODEL, __doc__ or "", argv)
    EchoServer(config).serve()
    return 0
