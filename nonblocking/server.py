"""nonblocking: one thread, every socket non-blocking, and no readiness API at all.

How it waits: it mostly does not. With `setblocking(False)`, accept, recv and send
return at once, raising BlockingIOError (EAGAIN) when they would have blocked. The loop
makes passes: try to accept, then for each client try recv and try send. A pass that
moved nothing means nobody is talking, so the loop sleeps, 1 ms at first and doubling
up to 50 ms while it stays idle, and never less than 32 times the empty pass took; any
progress resets the sleep to zero. That sleep is the one place this server blocks.

The trade-off, and why select() exists: every pass makes a syscall per socket, ready or
not, so a pass costs more with every connection, even when all are idle. Sleeping in
proportion to the pass keeps an idle server's polling near 3% of a core however many
clients it holds, but then it answers a byte after an idle spell late by up to 50 ms or
32 passes (about 150 ms with 1,000 clients), and a busy one still spins through sockets
with nothing to say. Read this first: select_mux is this same loop with the kernel
telling us which sockets are worth trying.

Backpressure: we try recv only while we owe a client less than --buffer-size, so a
client that does not read stops being read. Cost: one thread; per client one socket
and at most --buffer-size bytes; CPU even when idle.
"""

from __future__ import annotations

import logging
import socket
import time

from common import (
    ACCEPT_BATCH,
    READ_SIZE,
    AcceptPause,
    Config,
    ConnectionLimit,
    IdleTimer,
    StopRequest,
    announce,
    listen,
    parse_config,
)
from nonblocking import MODEL

log = logging.getLogger("nonblocking")

FIRST_BACKOFF = 0.001  # seconds of sleep after the first idle pass
MAX_BACKOFF = 0.05  # the longest sleep, unless the passes themselves take long
IDLE_PASSES_SHARE = 0.03  # of a core, the most that passes finding nothing may use


class Client:
    """One connection: its socket, the bytes we owe it, and whether it has half-closed."""

    def __init__(self, sock: socket.socket, address: tuple[str, int]) -> None:
        self.sock = sock
        self.address = address
        self.outbuf = bytearray()
        self.eof = False  # the client called shutdown(SHUT_WR): it will send nothing more


class EchoServer:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.stop = StopRequest(config.drain_timeout)
        self.limit = ConnectionLimit(config.max_connections)
        self.accept_pause = AcceptPause()
        self.idle: IdleTimer[Client] = IdleTimer(config.idle_timeout, lambda client: client.sock)
        self.clients: dict[socket.socket, Client] = {}

    # --- listen -----------------------------------------------------------------------
    def listen(self) -> None:
        self.listener = listen(self.config)
        self.listener.setblocking(False)  # accept() raises BlockingIOError instead of waiting
        self.listening = True
        self.stop.handle_signals()  # no wakeup socket: each pass looks at the flag
        announce(self.listener)

    # --- wait -------------------------------------------------------------------------
    def serve(self) -> None:
        self.listen()
        backoff = 0.0
        while not self.stop.finished(len(self.clients)):
            pass_started = time.monotonic()
            if self.stop.requested and self.listening:
                self.stop_accepting()
            busy = False
            for _ in range(ACCEPT_BATCH):  # all who wait, a batch at most: a pass costs a
                if not self.accept_client():  # syscall per client, so one accept per pass
                    break  # would keep a crowd of new clients waiting
                busy = True
            for client in list(self.clients.values()):
                if self.wants_to_read(client):
                    busy |= self.read(client)
                if client.sock in self.clients:  # read() may have closed it
                    busy |= self.write(client)  # what it is owed: most often all of it fits
            for client in self.idle.expired():
                self.close_client(client, TimeoutError(f"idle for {self.config.idle_timeout:g}s"))
            if busy:
                backoff = 0.0
                continue
            backoff = min(max(2 * backoff, FIRST_BACKOFF), MAX_BACKOFF)
            # With a thousand clients an empty pass takes milliseconds: sleep long enough
            # that such passes use at most IDLE_PASSES_SHARE of the CPU.
            empty_pass = time.monotonic() - pass_started
            backoff = max(backoff, empty_pass * (1 / IDLE_PASSES_SHARE - 1))
            # WAIT: the one place this server blocks. A signal does not cut the sleep short
            # (PEP 475: its handler runs, the sleep goes on), so a stop waits one back-off.
            drain_left = self.stop.timeout()
            time.sleep(backoff if drain_left is None else min(backoff, drain_left))
        self.close_all()

    # --- accept -----------------------------------------------------------------------
    def accept_client(self) -> bool:
        if not self.listening or self.accept_pause.paused():
            return False
        try:
            sock, address = self.listener.accept()
        except BlockingIOError:
            return False  # nobody is waiting to connect
        except OSError as error:
            # e.g. EMFILE: the client stays queued, so every pass would fail the same way,
            # again and again. Skip accepting for a while; the back-off sleep stays cheap.
            self.accept_pause.after(error)
            return False
        self.accept_pause.accepted()
        if not self.limit.admits(len(self.clients)):
            sock.close()  # at --max-connections: the client sees its connection end at once
            return True
        sock.setblocking(False)
        self.clients[sock] = client = Client(sock, address)
        self.idle.touch(client)
        log.debug("%s connected", address)
        return True

    # --- read -------------------------------------------------------------------------
    def wants_to_read(self, client: Client) -> bool:
        return not client.eof and len(client.outbuf) < self.config.buffer_size

    def read(self, client: Client) -> bool:
        room = self.config.buffer_size - len(client.outbuf)
        try:
            data = client.sock.recv(min(READ_SIZE, room))
        except BlockingIOError:
            return False  # nothing arrived yet
        except OSError as error:
            self.close_client(client, error)
            return True
        if data:
            client.outbuf += data
        else:
            client.eof = True  # half-close: nothing more will come, but we still owe outbuf
        self.idle.touch(client)
        return True

    # --- write ------------------------------------------------------------------------
    def write(self, client: Client) -> bool:
        sent = 0
        if client.outbuf:
            try:
                sent = client.sock.send(client.outbuf)  # may take only part: keep the rest
                self.idle.touch(client)  # it took at least one byte
            except BlockingIOError:
                pass  # its send buffer is full: the client is not reading
            except OSError as error:
                self.close_client(client, error)
                return True
            del client.outbuf[:sent]
        if client.eof and not client.outbuf:
            self.close_client(client)  # owed nothing after half-close: we are done
            return True
        return sent > 0

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
    def stop_accepting(self) -> None:
        # A stop signal: StopRequest already started the drain clock. The next signal exits
        # at once, from inside its handler.
        self.listening = False
        self.listener.close()

    def close_all(self) -> None:
        if self.clients:
            log.warning("drain time over: closing %d connection(s)", len(self.clients))
        for client in list(self.clients.values()):
            self.close_client(client)


def main(argv: list[str] | None = None) -> int:
    config = parse_config(MODEL, __doc__ or "", argv)
    EchoServer(config).serve()
    return 0
