"""blocking: blocking sockets, one thread per connection.

How it waits: everywhere, and that is the point. The main thread blocks in accept();
each connection gets a thread of its own that blocks in recv() until bytes arrive, then
in send() until the kernel has taken all of them. The kernel's scheduler is the
multiplexer: a thread blocked in a syscall costs no CPU, and a ready socket wakes the
one thread that waits on it.

Why there is no write set and no outbuf here: the send() loop ends only once every byte
is in the kernel's send buffer, and while it waits this thread does not recv, so
backpressure comes free (a client that does not read stalls only its own thread).
Half-close comes free too: recv() returns b"" only after all earlier bytes were echoed.

What it costs: a thread per connection, each with its own stack and a place in the
scheduler. Python threads also take turns on the GIL, so they overlap waiting, not
computing. Start here: every other model exists to serve many sockets without this.

Stopping: only the main thread runs Python signal handlers, so the stop handler raises
StopAccepting to end its accept(), only while it is in accept(); elsewhere, a flag.
"""

from __future__ import annotations

import _thread
import contextlib
import logging
import socket
import sys
import time

from blocking import MODEL
from common import (
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

log = logging.getLogger("blocking")

# Why 1 s (not 5 ms), no lock and _thread: ten thousand threads, see docs/blocking.md.
SWITCH_INTERVAL = 1.0


class Client:
    """One connection: its socket and address. No outbuf: the send() loop holds what is owed."""

    def __init__(self, sock: socket.socket, address: tuple[str, int]) -> None:
        self.sock = sock
        self.address = address


class StopAccepting(Exception):
    """Raised by the stop-signal handler, in the main thread, to break out of accept()."""


class EchoServer:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.stop = StopRequest(config.drain_timeout)
        self.limit = ConnectionLimit(config.max_connections)
        self.accept_pause = AcceptPause()
        self.idle: IdleTimer[Client] = IdleTimer(config.idle_timeout, lambda client: client.sock)
        # Shared with the client threads, with no lock: each change is one dict operation.
        self.clients: dict[socket.socket, Client] = {}
        self.accepting = False  # True only while the main thread waits in accept()

    # --- listen -----------------------------------------------------------------------
    def listen(self) -> None:
        self.listener = listen(self.config)  # stays blocking: accept() waits for a client
        self.stop.handle_signals(then=self.raise_stop)
        announce(self.listener)

    # --- wait -------------------------------------------------------------------------
    def serve(self) -> None:
        # No wait of its own: the main thread waits in accept(), each client's in recv().
        self.listen()
        while not self.stop.requested:
            self.accept_client()
        self.stop_accepting()
        self.close_all()

    # --- accept -----------------------------------------------------------------------
    def accept_client(self) -> None:
        try:
            sock, address = self.wait_for_client()
        except StopAccepting:
            return  # a stop signal ended the wait
        except OSError as error:
            # e.g. EMFILE: the client stays queued, so retrying at once would fail the same way,
            # again and again. Sleep a while instead; a stop waits until the sleep ends.
            time.sleep(self.accept_pause.after(error))
            return
        self.accept_pause.accepted()
        if not self.limit.admits(len(self.clients)):
            sock.close()  # at --max-connections: the client sees its connection end at once
            return
        self.clients[sock] = client = Client(sock, address)
        try:
            _thread.start_new_thread(self.serve_client, (client,))  # see SWITCH_INTERVAL
        except RuntimeError as error:  # can't start new thread: out of memory or of threads
            del self.clients[sock]
            sock.close()  # turned away: the client sees its connection end at once
            time.sleep(self.accept_pause.after(error))  # as at EMFILE: let some threads end
            return
        log.debug("%s connected", address)

    def wait_for_client(self) -> tuple[socket.socket, tuple[str, int]]:
        # The stop handler raises only while `accepting` is set, so StopAccepting comes out
        # of here and nowhere else: never out of announce() or a half-started thread.
        self.accepting = True
        try:
            if self.stop.requested:
                raise StopAccepting  # the signal came just before: start no wait it cannot end
            # WAIT (main thread): until a client connects, or a stop signal raises. A signal
            # landing just after accept() returned drops that client: it came too late.
            return self.listener.accept()
        finally:
            self.accepting = False

    # --- read and write: the whole life of one client, in its own thread --------------
    def serve_client(self, client: Client) -> None:
        # --idle-timeout: recv() and send() raise TimeoutError after that long without
        # progress. (Not sendall(): its timeout bounds the whole call, and cannot resume.)
        client.sock.settimeout(self.config.idle_timeout or None)
        try:
            while True:
                # WAIT (client thread): until bytes arrive, or b"" for the client's FIN.
                data = self.idle.unless_idle(
                    client, client.sock.recv, min(READ_SIZE, self.config.buffer_size)
                )
                if not data:
                    break  # half-close: everything it sent has already been echoed
                # WAIT (client thread): until the kernel took every byte. A client that
                # does not read keeps us here, so we stop reading it: backpressure.
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
        del self.clients[client.sock]
        self.idle.forget(client)
        client.sock.close()  # FIN if all input was read; RST if unread input is dropped

    # --- stop -------------------------------------------------------------------------
    def raise_stop(self) -> None:
        if self.accepting:  # runs inside the signal handler, in the main thread
            raise StopAccepting

    def stop_accepting(self) -> None:
        self.listener.close()

    def close_all(self) -> None:
        self.wait_for_clients_to_leave(self.stop.timeout())  # the drain
        stuck = list(self.clients.copy())  # copy(): one step, while threads remove themselves
        if stuck:
            log.warning("drain time over: closing %d connection(s)", len(stuck))
        for sock in stuck:
            # close() would not wake a thread blocked in recv() or sendall(); shutdown()
            # does, and that thread then closes its socket itself.
            with contextlib.suppress(OSError):  # its thread may have closed it just now
                sock.shutdown(socket.SHUT_RDWR)
        self.wait_for_clients_to_leave(1.0)  # each thread wakes, closes its socket, leaves

    def wait_for_clients_to_leave(self, timeout: float | None) -> None:
        deadline = time.monotonic() + (timeout or 0.0)
        while self.clients and time.monotonic() < deadline:
            time.sleep(0.01)  # WAIT: polling, as the leaving threads take no lock to tell us


def main(argv: list[str] | None = None) -> int:
    config = parse_config(MODEL, __doc__ or "", argv)
    sys.setswitchinterval(SWITCH_INTERVAL)
    EchoServer(config).serve()
    return 0
