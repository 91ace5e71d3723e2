"""uring_io: one thread; the kernel itself accepts, receives and sends: io_uring.

How it waits: nothing waits for readiness. The loop hands the kernel tagged requests
(accept; recv into a buffer; send from one), and `io_uring_enter()`, the one place this
server blocks, submits all the pass prepared and sleeps until one completes or a
deadline passes. A completion says what was done: bytes moved, a new socket, or -errno.

What changes from epoll_mux: the question. epoll said "this socket is ready: recv()";
io_uring says "your recv() is done: here are the bytes". So a request's buffer is the
kernel's until it completes (close() does not end it: cancel, then wait), and there is
one syscall per pass, not one per accept, recv and send. The rings are in ring.py.

Per client: one recv in flight, asked only while we owe under --buffer-size (the
backpressure); one send of all we owe (a short one leaves the rest to the next). One
accept, asked again after each completion, not multishot: a pause is "do not ask".
The cost: each client lends the kernel a 64 KiB buffer (of which it touches a page or two).
"""

from __future__ import annotations

import ctypes
import itertools
import logging
import mmap
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
from uring_io import MODEL
from uring_io.ring import OP_ACCEPT, OP_RECV, OP_SEND, Buffer, Ring, error

log = logging.getLogger("uring_io")

# A full SQ is submitted mid-pass; completions past a full CQ wait in the kernel until
# the next io_uring_enter() (NODROP). The CQ holds a burst from 10,000 clients (C10K).
SQ_ENTRIES, CQ_ENTRIES = 4096, 16384
# Tags (user_data): the accept, the wakeup recv; a client's recv and send: number * 2 + RECV, SEND.
ACCEPT, WAKEUP, RECV, SEND = 1, 2, 0, 1


class Client:
    """One connection: its socket, what we owe it, and the buffers lent to the kernel."""

    def __init__(self, sock: socket.socket, address: tuple[str, int], number: int) -> None:
        self.sock = sock
        self.address = address
        self.number = number
        self.outbuf = bytearray()
        self.eof = False  # the client called shutdown(SHUT_WR): it will send nothing more
        # The kernel's while a recv is in flight. Anonymous memory: only pages a recv wrote cost RAM.
        self.inbuf = (ctypes.c_char * READ_SIZE).from_buffer(mmap.mmap(-1, READ_SIZE))
        self.sending: Buffer | None = None  # the kernel's while a send is in flight


class EchoServer:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.stop = StopRequest(config.drain_timeout)
        self.limit = ConnectionLimit(config.max_connections)
        self.accept_pause = AcceptPause()
        self.idle: IdleTimer[Client] = IdleTimer(config.idle_timeout, lambda client: client.sock)
        self.clients: dict[int, Client] = {}
        self.numbers = itertools.count(2)  # 2 * number stays clear of ACCEPT and WAKEUP

    # --- listen -----------------------------------------------------------------------
    def listen(self) -> None:
        self.listener = listen(self.config)
        self.ring = Ring(SQ_ENTRIES, CQ_ENTRIES)
        self.stop.handle_signals()
        self.wakeup = self.stop.wakeup_socket()
        self.signal_bytes = ctypes.create_string_buffer(4096)
        self.ring.submit(OP_RECV, self.wakeup.fileno(), WAKEUP, buf=self.signal_bytes)
        announce(self.listener)

    # --- wait -------------------------------------------------------------------------
    def serve(self) -> None:
        self.listen()
        while not self.stop.finished(len(self.clients)):
            self.resume_accepting()
            timeout = earliest(self.stop.timeout(), self.accept_pause.timeout(), self.idle.timeout())
            # WAIT: the one place this server blocks: submit all this pass prepared, then sleep
            # until one completes, a deadline passes (drain, accept pause, idle) or a signal comes.
            self.ring.enter(1, timeout)
            for tag, result in self.ring.completions():  # each request once: no starving
                if tag == ACCEPT:
                    self.accept_client(result)
                elif tag == WAKEUP:
                    self.stop_accepting()
                elif client := self.clients.get(tag // 2):  # else closed: a cancelled request
                    (self.sent if tag % 2 == SEND else self.read)(client, result)
                    if client.number in self.clients:  # read() or sent() may have closed it
                        self.write(client)  # now: the echo goes out with the next enter
            for client in self.idle.expired():
                self.close_client(client, TimeoutError(f"idle for {self.config.idle_timeout:g}s"))
        self.close_all()

    # --- accept -----------------------------------------------------------------------
    def accept_client(self, result: int) -> None:
        if result < 0:  # e.g. EMFILE: asked again at once, it would fail at once, again and again
            if not self.stop.requested:
                self.accept_pause.after(error(result))  # resume_accepting() asks after the pause
            return
        sock = socket.socket(fileno=result)  # the kernel accepted it: result is its descriptor
        if self.stop.requested:
            return sock.close()  # accepted as we stopped: the listener is closing
        self.accept_pause.accepted()
        if not self.limit.admits(len(self.clients)):
            return sock.close()  # at --max-connections: the client sees its connection end at once
        try:
            address = sock.getpeername()
        except OSError:  # it reset while queued: nothing to serve
            return sock.close()
        number = next(self.numbers)
        self.clients[number] = client = Client(sock, address, number)
        self.idle.touch(client)
        self.receive(client)
        log.debug("%s connected", address)

    def resume_accepting(self) -> None:
        # One accept in flight, asked for the next pass: none while paused or stopping.
        if ACCEPT not in self.ring.flights and not self.stop.requested and not self.accept_pause.paused():
            self.ring.submit(OP_ACCEPT, self.listener.fileno(), ACCEPT)  # open: not stopping

    # --- read -------------------------------------------------------------------------
    def receive(self, client: Client) -> None:  # one at a time, while we owe under --buffer-size
        room = self.config.buffer_size - len(client.outbuf)
        tag = client.number * 2 + RECV
        if tag not in self.ring.flights and not client.eof and room > 0:
            self.ring.submit(OP_RECV, client.sock.fileno(), tag, client.inbuf, min(READ_SIZE, room))

    def read(self, client: Client, result: int) -> None:
        if result < 0:
            return self.close_client(client, error(result))
        if result:
            client.outbuf += ctypes.string_at(client.inbuf, result)
        else:
            client.eof = True  # half-close: nothing more will come, but we still owe outbuf
        self.idle.touch(client)

    # --- write ------------------------------------------------------------------------
    def write(self, client: Client) -> None:
        if client.outbuf and client.sending is None:  # a copy: outbuf grows while the kernel sends
            client.sending = (ctypes.c_char * len(client.outbuf)).from_buffer_copy(client.outbuf)
            self.ring.submit(OP_SEND, client.sock.fileno(), client.number * 2 + SEND, client.sending)
        if client.eof and not client.outbuf:
            return self.close_client(client)  # owed nothing after half-close: we are done
        self.receive(client)  # sending freed room, or a chunk came: ask for the next

    def sent(self, client: Client, result: int) -> None:
        client.sending = None
        if result < 0:
            return self.close_client(client, error(result))
        del client.outbuf[:result]  # a short send: the rest goes in the next request
        self.idle.touch(client)

    # --- close ------------------------------------------------------------------------
    def close_client(self, client: Client, error: OSError | None = None) -> None:
        if isinstance(error, (ConnectionError, TimeoutError)):
            log.debug("%s closed: %s", client.address, error)  # reset, broken pipe, idle: routine
        elif error is not None:
            log.warning("%s failed: %s", client.address, error)  # only this client ends
        del self.clients[client.number]
        self.idle.forget(client)
        # close() alone would not end a request in flight (it holds the socket open):
        # cancel it. The ring keeps its buffer until its completion comes.
        self.ring.cancel(client.number * 2 + RECV)
        self.ring.cancel(client.number * 2 + SEND)
        client.sock.close()  # FIN if all input was read; RST if unread input is dropped

    # --- stop -------------------------------------------------------------------------
    def stop_accepting(self) -> None:
        # A handled signal came, its handler ran, and its byte completed our recv: ask
        # again (a second signal must end the wait too), and stop only for a stop signal.
        self.ring.submit(OP_RECV, self.wakeup.fileno(), WAKEUP, buf=self.signal_bytes)
        if self.stop.requested and self.listener.fileno() != -1:
            self.ring.cancel(ACCEPT)
            self.listener.close()

    def close_all(self) -> None:
        if self.clients:
            log.warning("drain time over: closing %d connection(s)", len(self.clients))
        for client in list(self.clients.values()):
            self.close_client(client)
        self.ring.close()  # cancels the accept and the wakeup recv, and waits for all


def main(argv: list[str] | None = None) -> int:
    config = parse_config(MODEL, __doc__ or "", argv)
    EchoServer(config).serve()
    return 0
