"""blocking: blocking sockets, one thread per connection.

How it waits: everywhere, and that is the point. The main thread blocks in accept();
each connection gets a thread of its own that blocks in recv() until bytes arrive, then
in sendall() until the kernel has taken all of them. The kernel's scheduler is the
multiplexer: a thread blocked in a syscall costs no CPU, and a ready socket wakes the
one thread that waits on it.

Why there is no write set and no outbuf here: sendall() returns only once every byte
is in the kernel's send buffer, and while it waits this thread does not recv, so
backpressure comes free (a client that does not read stalls only its own thread).
Half-close comes free too: recv() returns b"" only after all earlier bytes were echoed.

What it costs: a thread per connection, each with its own stack and a place in the
scheduler. Python threads also take turns on the GIL, so they overlap waiting, not
computing. Start here: every other model exists to serve many sockets without this.

Stopping: the main thread sits in accept(), and only the main thread runs Python
signal handlers, so the stop handler raises StopAccepting there to end the wait, but
only while that thread is inside accept(); anywhere else the loop sees the flag.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading

from common import READ_SIZE, Config, ConnectionLimit, Shutdown, announce, listen, parse_config

log = logging.getLogger("blocking")


class StopAccepting(Exception):
    """Raised by the stop-signal handler, in the main thread, to break out of accept()."""


class EchoServer:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.shutdown = Shutdown(config.drain_timeout)
        self.limit = ConnectionLimit(config.max_connections)
        self.clients: dict[socket.socket, threading.Thread] = {}
        self.lock = threading.Lock()  # clients is changed by the main and client threads
        self.accepting = False  # True only while the main thread waits in accept()

    # --- listen ---------------------------------------------------------------------
    def listen(self) -> None:
        self.listener = listen(self.config)  # stays blocking: accept() waits for a client
        self.shutdown.handle_signals(then=self.raise_stop)
        announce(self.listener)

    def serve(self) -> None:
        self.listen()
        while not self.shutdown.requested:
            self.accept_client()
        self.stop_accepting()
        self.close_all()

    # --- accept ---------------------------------------------------------------------
    def accept_client(self) -> None:
        try:
            sock, address = self.wait_for_client()
        except StopAccepting:
            return  # a stop signal ended the wait
        except OSError as error:  # e.g. EMFILE: out of file descriptors; the client waits
            log.error("accept failed: %s", error)
            return
        with self.lock:  # client threads remove themselves under the same lock
            open_connections = len(self.clients)
        if not self.limit.admits(open_connections):
            sock.close()  # at --max-connections: the client sees its connection end at once
            return
        thread = threading.Thread(target=self.serve_client, args=(sock, address), daemon=True)
        with self.lock:
            self.clients[sock] = thread
        thread.start()
        log.debug("%s connected", address)

    def wait_for_client(self) -> tuple[socket.socket, tuple[str, int]]:
        # The stop handler raises only while `accepting` is set, so StopAccepting comes out
        # of here and nowhere else: never out of announce() or a half-started thread.
        self.accepting = True
        try:
            if self.shutdown.requested:
                raise StopAccepting  # the signal came just before: start no wait it cannot end
            # WAIT (main thread): until a client connects, or a stop signal raises. A signal
            # landing just after accept() returned drops that client: it came too late.
            return self.listener.accept()
        finally:
            self.accepting = False

    # --- read and write: the whole life of one client, in its own thread -------------
    def serve_client(self, sock: socket.socket, address: tuple[str, int]) -> None:
        try:
            while True:
                # WAIT (client thread): until bytes arrive, or b"" for the client's FIN.
                data = sock.recv(min(READ_SIZE, self.config.buffer_size))
                if not data:
                    break  # half-close: everything it sent has already been echoed
                # WAIT (client thread): until the kernel took every byte. A client that
                # does not read keeps us here, so we stop reading it: backpressure.
                sock.sendall(data)
        except OSError as error:
            self.close_client(sock, address, error)
        else:
            self.close_client(sock, address)

    # --- close ----------------------------------------------------------------------
    def close_client(self, sock: socket.socket, address: object, error: OSError | None = None) -> None:
        if isinstance(error, ConnectionError):
            log.debug("%s gone: %s", address, error)  # reset or broken pipe: routine
        elif error is not None:
            log.warning("%s failed: %s", address, error)  # only this client ends
        with self.lock:
            del self.clients[sock]
        sock.close()  # FIN if all input was read; RST if unread input is dropped

    # --- shutdown -------------------------------------------------------------------
    def raise_stop(self) -> None:
        if self.accepting:  # runs inside the signal handler, in the main thread
            raise StopAccepting

    def stop_accepting(self) -> None:
        self.listener.close()

    def close_all(self) -> None:
        with self.lock:
            threads = list(self.clients.values())
        for thread in threads:  # drain: each join ends at the deadline at the latest
            thread.join(self.shutdown.timeout())
        with self.lock:
            stuck = list(self.clients)
        if stuck:
            log.warning("drain time over: closing %d connection(s)", len(stuck))
        for sock in stuck:
            # close() would not wake a thread blocked in recv() or sendall(); shutdown()
            # does, and that thread then closes its socket itself.
            with contextlib.suppress(OSError):  # its thread may have closed it just now
                sock.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(1.0)


def main(argv: list[str] | None = None) -> int:
    config = parse_config("blocking", __doc__ or "", argv)
    EchoServer(config).serve()
    return 0
