"""poll_mux: one thread, every socket watched through select.poll().

How it waits: every socket is non-blocking and registered, by descriptor, with one
poll object. `poll()`, the one place this server blocks, returns (fd, events) for the
ready ones; the loop performs exactly the accept, recv or send that cannot block.

What changes from select_mux: poll(2) takes an array of (fd, events), not fd_set
bitmaps, so any descriptor number fits: no FD_SETSIZE, nobody refused for it. What
does not: the kernel keeps no interest between calls. Python's poll object keeps it in
user space (a dict, made into the pollfd array again after a register, modify or
unregister), but each call copies the whole array in, asks every descriptor and copies
it out: O(all sockets) per wakeup (selectors_mux and epoll_mux fix exactly this).

Interest per client: POLLIN while it may send and we owe it under --buffer-size
(backpressure); POLLOUT only while output is pending, or a socket with room to send
would wake us for nothing. POLLERR and POLLHUP come unasked: recv() or send() tells.
Cost: one thread; per client one socket and at most --buffer-size bytes.
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
    StopRequest,
    announce,
    earliest,
    listen,
    parse_config,
)
from poll_mux import MODEL

log = logging.getLogger("poll_mux")


class Client:
    """One connection: its socket, the bytes we owe it, and whether it has half-closed."""

    def __init__(self, sock: socket.socket, address: tuple[str, int]) -> None:
        self.sock = sock
        self.address = address
        self.outbuf = bytearray()
        self.eof = False  # the client called shutdown(SHUT_WR): it will send nothing more
        self.events = select.POLLIN  # what we asked poll() to watch for


class EchoServer:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.stop = StopRequest(config.drain_timeout)
        self.limit = ConnectionLimit(config.max_connections)
        self.accept_pause = AcceptPause()
        self.idle: IdleTimer[Client] = IdleTimer(config.idle_timeout, lambda client: client.sock)
        self.clients: dict[int, Client] = {}  # poll() speaks in descriptors, not sockets

    # --- listen -----------------------------------------------------------------------
    def listen(self) -> None:
        self.listener = listen(self.config)
        self.listener.setblocking(False)  # a readiness report can be stale: never block on it
        self.listener_fd = self.listener.fileno()  # kept: fileno() is -1 once it is closed
        self.poller = select.poll()  # a user-space table of interest, not a kernel object
        self.poller.register(self.listener_fd, select.POLLIN)
        self.accept_paused = False
        self.stop.handle_signals()
        self.wakeup = self.stop.wakeup_socket()
        self.poller.register(self.wakeup.fileno(), select.POLLIN)
        announce(self.listener)

    # --- wait -------------------------------------------------------------------------
    def serve(self) -> None:
        self.listen()
        while not self.stop.finished(len(self.clients)):
            self.resume_accepting()
            timeout = earliest(self.stop.timeout(), self.accept_pause.timeout(), self.idle.timeout())
            # WAIT: the one place this server blocks, until a descriptor is ready or a
            # deadline passes (drain, accept pause, idle client). EINTR is retried (PEP 475).
            for fd, events in self.poller.poll(None if timeout is None else timeout * 1000):  # in ms
                if fd == self.wakeup.fileno():
                    self.stop_accepting()
                elif fd == self.listener_fd:
                    self.accept_client()
                else:
                    if events & select.POLLIN:
                        self.read(self.clients[fd])
                    if fd in self.clients:  # read() may have closed it
                        self.write(self.clients[fd])  # what it is owed: most often all of it fits
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
                self.poller.unregister(self.listener_fd)
                self.accept_paused = True
            return
        self.accept_pause.accepted()
        if not self.limit.admits(len(self.clients)):
            sock.close()  # at --max-connections: the client sees its connection end at once
            return
        sock.setblocking(False)
        self.clients[sock.fileno()] = client = Client(sock, address)  # any number: no FD_SETSIZE
        self.poller.register(sock.fileno(), client.events)
        self.idle.touch(client)
        log.debug("%s connected", address)

    def resume_accepting(self) -> None:
        if self.accept_paused and not self.accept_pause.paused():
            self.poller.register(self.listener_fd, select.POLLIN)
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
        events = select.POLLOUT if client.outbuf else 0
        if self.wants_to_read(client):
            events |= select.POLLIN
        if events != client.events:  # no syscall: a dict entry, and the array rebuilt once
            self.poller.modify(client.sock.fileno(), events)
            client.events = events

    # --- close ------------------------------------------------------------------------
    def close_client(self, client: Client, error: OSError | None = None) -> None:
        if isinstance(error, (ConnectionError, TimeoutError)):
            log.debug("%s closed: %s", client.address, error)  # reset, broken pipe, idle: routine
        elif error is not None:
            log.warning("%s failed: %s", client.address, error)  # only this client ends
        self.poller.unregister(client.sock.fileno())  # before close(): the fd may be reused
        del self.clients[client.sock.fileno()]
        self.idle.forget(client)
        client.sock.close()  # FIN if all input was read; RST if unread input is dropped

    # --- stop -------------------------------------------------------------------------
    def stop_accepting(self) -> None:
        # A handled signal came, and its handler ran: drain the wakeup socket (or it stays
        # readable), and stop only for a stop signal. A second one exits at once, in there.
        self.wakeup.recv(4096)
        if not self.stop.requested:
            return
        self.poller.unregister(self.wakeup.fileno())
        if not self.accept_paused:  # a paused listener is unwatched already
            self.poller.unregister(self.listener_fd)
        self.accept_paused = False  # closed: never watch it again (its fd may be reused)
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
