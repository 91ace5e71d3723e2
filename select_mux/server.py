"""select_mux: one thread, every socket watched through select.select().

How it waits: every socket is non-blocking. Each pass builds two lists, the sockets we
want to read from and the sockets we want to write to, and hands them to `select()`,
the one place this server blocks. It returns the subsets that are ready, and the loop
performs exactly the accept, recv or send that cannot block.

What it costs: the kernel keeps no memory of our interest between calls, so every pass
copies both sets in, scans every descriptor and copies the answers out: O(all sockets)
per wakeup, however few are ready (selectors_mux and epoll_mux fix exactly this).
select() also cannot watch a descriptor numbered FD_SETSIZE (1024) or above: Python
raises ValueError. This server closes any client whose descriptor would not fit.

Interest per client: readable while it may still send and we owe it less than
--buffer-size (backpressure: at the cap we stop reading, its kernel receive buffer
fills, and TCP's window stops the client); writable only while output is pending,
because a socket with room in its send buffer is always writable and would wake us
for nothing. Cost: one thread; per client one socket and at most --buffer-size bytes.
"""

from __future__ import annotations

import logging
import select
import socket

from common import (
    READ_SIZE,
    AcceptPause,
    Config,
    ConnectionLimit,
    IdleTimer,
    Refusals,
    StopRequest,
    announce,
    earliest,
    listen,
    parse_config,
)
from select_mux import FD_SETSIZE, MODEL

log = logging.getLogger("select_mux")


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
        self.past_fd_setsize = Refusals(f"descriptors past select()'s limit of {FD_SETSIZE}")
        self.accept_pause = AcceptPause()
        self.idle: IdleTimer[Client] = IdleTimer(config.idle_timeout, lambda client: client.sock)
        self.clients: dict[socket.socket, Client] = {}

    # --- listen -----------------------------------------------------------------------
    def listen(self) -> None:
        self.listener = listen(self.config)
        self.listening = True
        self.listener.setblocking(False)  # a readiness report can be stale: never block on it
        self.stop.handle_signals()
        self.wakeup = self.stop.wakeup_socket()
        announce(self.listener)

    # --- wait -------------------------------------------------------------------------
    def serve(self) -> None:
        self.listen()
        while not self.stop.finished(len(self.clients)):
            # No interest is remembered between calls: rebuild both lists every pass.
            readers = [sock for sock, client in self.clients.items() if self.wants_to_read(client)]
            writers = [sock for sock, client in self.clients.items() if client.outbuf]
            if self.listening:
                readers.append(self.wakeup)
            if self.listening and not self.accept_pause.paused():
                readers.append(self.listener)
            timeout = earliest(self.stop.timeout(), self.accept_pause.timeout(), self.idle.timeout())
            # WAIT: the one place this server blocks, until a socket is ready or a
            # deadline passes (drain, accept pause, idle client). EINTR is retried (PEP 475).
            readable, writable, _ = select.select(readers, writers, [], timeout)
            for sock in readable:
                if sock is self.wakeup:
                    self.stop_accepting()
                elif sock is self.listener:
                    self.accept_client()
                else:
                    self.read(self.clients[sock])
                    if sock in self.clients:  # read() may have closed it
                        self.write(self.clients[sock])  # what it is owed: most often all of it fits
            for sock in set(writable).difference(readable):  # the readable ones: written above
                self.write(self.clients[sock])
            for client in self.idle.expired():
                self.close_client(client, TimeoutError(f"idle for {self.config.idle_timeout:g}s"))
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
            self.accept_pause.after(error)  # serve() leaves it out of select() until then
            return
        self.accept_pause.accepted()
        if self.past_fd_setsize.refuses(sock.fileno() >= FD_SETSIZE):  # logged once a second
            sock.close()  # at most, with a count: a flood of clients must not flood the log
            return
        if not self.limit.admits(len(self.clients)):
            sock.close()  # at --max-connections: the client sees its connection end at once
            return
        sock.setblocking(False)
        self.clients[sock] = client = Client(sock, address)
        self.idle.touch(client)
        log.debug("%s connected", address)

    # --- read -------------------------------------------------------------------------
    def wants_to_read(self, client: Client) -> bool:
        return not client.eof and len(client.outbuf) < self.config.buffer_size

    def read(self, client: Client) -> None:
        room = self.config.buffer_size - len(client.outbuf)  # > 0, or we would not be watching
        try:
            data = client.sock.recv(min(READ_SIZE, room))
        except BlockingIOError:
            return  # woken for nothing: wait again
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
            del client.outbuf[:sent]
        if client.eof and not client.outbuf:
            self.close_client(client)  # owed nothing after half-close: we are done
        # Nothing to update: the next pass rebuilds the lists from outbuf and eof.

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
        # A handled signal came, and its handler ran: drain the wakeup socket (or it stays
        # readable), and stop only for a stop signal. A second one exits at once, in there.
        self.wakeup.recv(4096)
        if not self.stop.requested:
            return
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
