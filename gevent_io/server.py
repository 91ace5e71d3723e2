"""gevent_io: blocking-style code, one greenlet per connection, on gevent's sockets.

How it waits: each client's greenlet calls recv() and send() as blocking code does,
on a gevent socket, which is non-blocking underneath. A call that would block
registers the socket with gevent's hub, and switches to it. The hub is the one place
this process blocks: its loop (libev, in epoll_wait() on Linux) waits for every socket
at once, then switches back to the greenlet whose socket is ready.

What changes from blocking: the socket class, and who switches. There, the kernel's
scheduler runs a thread per client, preempting them; here one thread runs a greenlet
per client, and switches only where a call would block. So a greenlet costs a few KiB
instead of a thread's stack, and a greenlet that computes without calling one stalls
every client (docs/gevent_io.md measures it).

No monkey-patching: this file asks for gevent's socket by name, so every place that
may switch is visible. gevent.monkey.patch_all() would make blocking/server.py itself
run on greenlets, by swapping the socket, thread, time and signal modules for gevent's
in the whole process (docs/gevent_io.md says what that changes).
"""

from __future__ import annotations

import contextlib
import logging
import socket

import gevent  # type: ignore[import-untyped]  # gevent ships no type hints
import gevent.event  # type: ignore[import-untyped]
import gevent.pool  # type: ignore[import-untyped]
import gevent.socket  # type: ignore[import-untyped]

from common import (
    READ_SIZE,
    STOP_SIGNALS,
    AcceptPause,
    Config,
    ConnectionLimit,
    IdleTimer,
    StopRequest,
    announce,
    listen,
    parse_config,
)
from gevent_io import MODEL

log = logging.getLogger("gevent_io")


class Client:
    """One connection: its gevent socket and address. No outbuf: the send() loop holds what is owed."""

    def __init__(self, sock: gevent.socket.socket, address: tuple[str, int]) -> None:
        self.sock = sock
        self.address = address


class EchoServer:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.stop = StopRequest(config.drain_timeout)
        self.limit = ConnectionLimit(config.max_connections)
        self.accept_pause = AcceptPause()
        self.idle: IdleTimer[Client] = IdleTimer(config.idle_timeout, lambda client: client.sock)
        self.clients: dict[gevent.socket.socket, Client] = {}
        self.greenlets = gevent.pool.Group()  # one per client, to wait for at the drain
        self.stopping = gevent.event.Event()

    # --- listen -----------------------------------------------------------------------
    def listen(self) -> None:
        listener = listen(self.config)
        for signum in STOP_SIGNALS:
            # The hub watches the signal, and runs the handler in a greenlet of its own:
            # never in the middle of a client's code, as a Python signal handler would.
            gevent.signal_handler(signum, self.stop_accepting, signum)
        announce(listener)
        # The same socket as every model, handed to gevent: its accept() now switches
        # to the hub instead of blocking the thread.
        self.listener = gevent.socket.socket(listener.family, listener.type, fileno=listener.detach())

    # --- wait -------------------------------------------------------------------------
    def serve(self) -> None:
        self.listen()
        self.acceptor = gevent.spawn(self.accept_clients)
        # WAIT: the main greenlet switches to the hub until a stop signal. The hub's loop
        # (epoll_wait) is where the whole process waits, for every greenlet's socket.
        self.stopping.wait()
        self.close_all()

    # --- accept -----------------------------------------------------------------------
    def accept_clients(self) -> None:
        while True:
            self.accept_client()

    def accept_client(self) -> None:
        try:
            # WAIT (acceptor greenlet): switches to the hub until a client connects.
            sock, address = self.listener.accept()
        except OSError as error:
            # e.g. EMFILE: the client stays queued, so retrying at once would fail the same
            # way. Sleep in the hub instead: the other greenlets go on meanwhile.
            gevent.sleep(self.accept_pause.after(error))
            return
        self.accept_pause.accepted()
        if not self.limit.admits(len(self.clients)):
            sock.close()  # at --max-connections: the client sees its connection end at once
            return
        self.clients[sock] = client = Client(sock, address)
        self.greenlets.spawn(self.serve_client, client)  # a greenlet: a few KiB, no thread
        log.debug("%s connected", address)

    # --- read and write: the whole life of one client, in its own greenlet ------------
    def serve_client(self, client: Client) -> None:
        # --idle-timeout: recv() and send() raise TimeoutError after that long without
        # progress; the hub's timer, not the kernel, ends the wait.
        client.sock.settimeout(self.config.idle_timeout or None)
        size = min(READ_SIZE, self.config.buffer_size)
        owed = b""  # read, not yet sent: at most one recv() worth, so backpressure is free
        try:
            while True:
                try:
                    if owed:
                        # WAIT (client greenlet): until the kernel takes some of it.
                        owed = owed[client.sock.send(owed) :]
                        continue
                    # WAIT (client greenlet): until bytes arrive, or b"" for the client's FIN.
                    owed = client.sock.recv(size)
                    if not owed:
                        break  # half-close: everything it sent has already been echoed
                    if len(owed) == size:
                        # A full read: more is waiting, so neither call will block, and
                        # only a call that blocks switches to the hub. Yield, or a client
                        # streaming fast keeps the thread while every other one waits.
                        gevent.sleep(0)
                except TimeoutError:
                    if not self.idle.draining(client):  # no bytes moved either way: idle
                        raise
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
        del self.clients[client.sock]
        self.idle.forget(client)
        client.sock.close()  # FIN if all input was read; RST if unread input is dropped

    # --- stop -------------------------------------------------------------------------
    def stop_accepting(self, signum: int) -> None:
        self.stop.request(signum)  # a second stop signal exits here, at once
        self.acceptor.kill()  # raises GreenletExit in its accept(): it waits no more
        self.listener.close()
        self.stopping.set()

    def close_all(self) -> None:
        self.greenlets.join(timeout=self.stop.timeout())  # WAIT: the drain, in the hub
        stuck = list(self.clients)
        if stuck:
            log.warning("drain time over: closing %d connection(s)", len(stuck))
        for sock in stuck:
            # shutdown() makes the socket readable, so its greenlet's recv() or send()
            # returns, and it closes its socket itself.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self.greenlets.join(timeout=1.0)


def main(argv: list[str] | None = None) -> int:
    config = parse_config(MODEL, __doc__ or "", argv)
    EchoServer(config).serve()
    return 0
