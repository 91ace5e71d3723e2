"""selectors_mux: one thread, every socket watched through selectors.DefaultSelector.

How it waits: every socket is non-blocking and registered with a selector, which wraps
the best readiness API the platform has (epoll on Linux, kqueue on macOS and BSD).
`selector.select()` is the one place this server blocks; it returns the sockets that
are ready, and the loop performs exactly the accept, recv or send that cannot block.

What changes from select_mux: the interest set lives in the kernel between calls
(register, modify, unregister), so a wakeup costs O(ready sockets), not O(all sockets).

Interest per client: EVENT_READ while it may still send and we owe it less than
--buffer-size (backpressure: at the cap we stop reading, its kernel receive buffer
fills, and TCP's window stops the client); EVENT_WRITE only while output is pending,
because a socket with room in its send buffer is always writable and would wake us
for nothing. Cost: one thread; per client one socket and at most --buffer-size bytes.
"""

from __future__ import annotations

import logging
import selectors
import socket

from common import (
    READ_SIZE,
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
from selectors_mux import MODEL

log = logging.getLogger("selectors_mux")


class Client:
    """One connection: its socket, the bytes we owe it, and whether it has half-closed."""

    def __init__(self, sock: socket.socket, address: tuple[str, int]) -> None:
        self.sock = sock
        self.address = address
        self.outbuf = bytearray()
        self.eof = False  # the client called shutdown(SHUT_WR): it will send nothing more
        self.events = selectors.EVENT_READ  # what we asked the selector to watch for


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
        self.listener.setblocking(False)  # a readiness report can be stale: never block on it
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.listener, selectors.EVENT_READ)
        self.accept_paused = False
        self.stop.handle_signals()
        self.wakeup = self.stop.wakeup_socket()
        self.selector.register(self.wakeup, selectors.EVENT_READ)
        announce(self.listener)

    # --- wait -------------------------------------------------------------------------
    def serve(self) -> None:
        self.listen()
        while not self.stop.finished(len(self.clients)):
            self.resume_accepting()
            timeout = earliest(self.stop.timeout(), self.accept_pause.timeout(), self.idle.timeout())
            # WAIT: the one place this server blocks, until a socket is ready or a
            # deadline passes (drain, accept pause, idle client). EINTR is retried (PEP 475).
            for key, events in self.selector.select(timeout):
                if key.fileobj is self.wakeup:
                    self.stop_accepting()
                elif key.fileobj is self.listener:
                    self.accept_client()
                else:
                    if events & selectors.EVENT_READ:
                        self.read(key.data)
                    if key.fileobj in self.clients:  # read() may have closed it
                        self.write(key.data)  # what it is owed: most often all of it fits
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
            if self.accept_pause.after(error):
                self.selector.unregister(self.listener)
                self.accept_paused = True
            return
        self.accept_pause.accepted()
        if not self.limit.admits(len(self.clients)):
            sock.close()  # at --max-connections: the client sees its connection end at once
            return
        sock.setblocking(False)
        self.clients[sock] = client = Client(sock, address)
        self.selector.register(sock, client.events, client)
        self.idle.touch(client)
        log.debug("%s connected", address)

    def resume_accepting(self) -> None:
        if self.accept_paused and not self.accept_pause.paused():
            self.selector.register(self.listener, selectors.EVENT_READ)
            self.accept_paused = False

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
            return self.close_client(client)  # owed nothing after half-close: we are done
        events = selectors.EVENT_WRITE if client.outbuf else 0
        if self.wants_to_read(client):
            events |= selectors.EVENT_READ
        if events != client.events:  # a modify() is a syscall: only when interest changes
            self.selector.modify(client.sock, events, client)
            client.events = events

    # --- close ------------------------------------------------------------------------
    def close_client(self, client: Client, error: OSError | None = None) -> None:
        if isinstance(error, (ConnectionError, TimeoutError)):
            log.debug("%s closed: %s", client.address, error)  # reset, broken pipe, idle: routine
        elif error is not None:
            log.warning("%s failed: %s", client.address, error)  # only this client ends
        self.selector.unregister(client.sock)
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
        self.selector.unregister(self.wakeup)
        if not self.accept_paused:  # a paused listener is unwatched already
            self.selector.unregister(self.listener)
        self.accept_paused = False  # closed: never watch it again
        self.listener.close()

    def close_all(self) -> None:
        if self.clients:
            log.warning("drain time over: closing %d connection(s)", len(self.clients))
        for client in list(self.clients.values()):
            self.close_client(client)
        self.selector.close()


def main(argv: list[str] | None = None) -> int:
    config = parse_config(MODEL, __doc__ or "", argv)
    EchoServer(config).serve()
    return 0
