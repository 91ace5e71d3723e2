"""threadpool: one epoll thread waits; a bounded pool of threads does the ready sockets' IO.

How it waits: the main thread in `epoll.poll()`, as in epoll_mux; each ready socket goes to a
ThreadPoolExecutor of --workers threads, whose job (epoll_mux's loop body: a recv() and a send()
that cannot block) never waits on a client. EPOLLONESHOT gives a socket to one thread at a time.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

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
from threadpool import DEFAULT_WORKERS, MODEL

log = logging.getLogger("threadpool")


class Client:
    """One connection: its socket, the bytes we owe it, and who holds it now."""

    def __init__(self, sock: socket.socket, address: tuple[str, int]) -> None:
        self.sock = sock
        self.address = address
        self.outbuf = bytearray()
        self.eof = False  # the client called shutdown(SHUT_WR): it will send nothing more
        self.busy = False  # a pool thread holds it (disarmed in epoll) until it re-arms it


class EchoServer:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.stop = StopRequest(config.drain_timeout)
        self.limit = ConnectionLimit(config.max_connections)
        self.accept_pause = AcceptPause()
        self.idle: IdleTimer[Client] = IdleTimer(config.idle_timeout, lambda client: client.sock)
        self.clients: dict[int, Client] = {}  # epoll speaks in descriptors, not sockets
        self.lock = threading.RLock()  # the pool and the main thread share clients and idle

    # --- listen -----------------------------------------------------------------------
    def listen(self) -> None:
        self.listener = listen(self.config)
        self.listener.setblocking(False)  # a readiness report can be stale: never block on it
        self.listener_fd = self.listener.fileno()  # kept: fileno() is -1 once it is closed
        self.epoll = select.epoll()
        self.epoll.register(self.listener_fd, select.EPOLLIN)
        self.accept_paused = False
        self.pool = ThreadPoolExecutor(self.config.workers, thread_name_prefix="worker")
        # Start every thread now, each job held till all are up: one that cannot fails here.
        started = threading.Barrier(self.config.workers + 1)
        self.pool.map(lambda _: started.wait(), range(self.config.workers))
        started.wait()
        self.left = os.eventfd(0, os.EFD_NONBLOCK)  # a pool thread closed a client: count again
        self.epoll.register(self.left, select.EPOLLIN)
        self.stop.handle_signals()
        self.wakeup = self.stop.wakeup_socket()
        self.epoll.register(self.wakeup.fileno(), select.EPOLLIN)
        announce(self.listener)

    # --- wait -------------------------------------------------------------------------
    def serve(self) -> None:
        self.listen()
        while not self.stop.finished(len(self.clients)):
            self.resume_accepting()
            with self.lock:  # not busy: no pool thread has it, and none can get it before poll()
                for client in [client for client in self.idle.expired() if not client.busy]:
                    self.close_client(client, TimeoutError(f"idle for {self.config.idle_timeout:g}s"))
                timeout = earliest(self.stop.timeout(), self.accept_pause.timeout(), self.idle.timeout())
            for fd, events in self.epoll.poll(timeout):  # WAIT (main thread); the pool's wait for jobs
                if fd == self.wakeup.fileno():
                    self.stop_accepting()
                elif fd == self.listener_fd:
                    self.accept_client()
                elif fd == self.left:
                    os.eventfd_read(self.left)  # the loop's test then sees whether the drain is done
                else:
                    self.clients[fd].busy = True  # EPOLLONESHOT disarmed it: it is the pool's now
                    self.pool.submit(self.serve_ready, self.clients[fd], events)
        self.close_all()

    def serve_ready(self, client: Client, events: int) -> None:  # a job: epoll_mux's loop body
        if events & select.EPOLLIN:
            self.read(client)
        if client.sock.fileno() != -1:  # read() may have closed it
            self.write(client)

    # --- accept -----------------------------------------------------------------------
    def accept_client(self) -> None:
        if self.stop.requested:
            return  # a stop signal came during this pass: the listener is closing
        try:
            sock, address = self.listener.accept()
        except BlockingIOError:
            return  # the client left (or reset) before we got to it
        except OSError as error:
            if self.accept_pause.after(error):  # e.g. EMFILE: the listener stays readable
                self.epoll.unregister(self.listener_fd)
                self.accept_paused = True
            return
        self.accept_pause.accepted()
        if not self.limit.admits(len(self.clients)):
            sock.close()  # at --max-connections: the client sees its connection end at once
            return
        sock.setblocking(False)
        with self.lock:
            self.clients[sock.fileno()] = client = Client(sock, address)
            self.idle.touch(client)
        self.epoll.register(sock.fileno(), select.EPOLLIN | select.EPOLLONESHOT)
        log.debug("%s connected", address)

    def resume_accepting(self) -> None:
        if self.accept_paused and not self.accept_pause.paused():
            self.epoll.register(self.listener_fd, select.EPOLLIN)
            self.accept_paused = False

    # --- read -------------------------------------------------------------------------
    def read(self, client: Client) -> None:  # in a pool thread, which alone holds the client
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

    # --- write ------------------------------------------------------------------------
    def write(self, client: Client) -> None:  # in a pool thread, which alone holds the client
        if client.outbuf:
            try:
                sent = client.sock.send(client.outbuf)  # may take only part: keep the rest
            except BlockingIOError:
                sent = 0
            except OSError as error:
                return self.close_client(client, error)
            del client.outbuf[:sent]
        if client.eof and not client.outbuf:
            return self.close_client(client)  # owed nothing after half-close: we are done
        events = select.EPOLLOUT if client.outbuf else 0
        if not client.eof and len(client.outbuf) < self.config.buffer_size:  # backpressure
            events |= select.EPOLLIN
        with self.lock:  # hand it back: armed again, the main thread may close it (idle)
            self.idle.touch(client)  # a job runs only once it turned ready: bytes moved
            client.busy = False
            self.epoll.modify(client.sock.fileno(), events | select.EPOLLONESHOT)

    # --- close ------------------------------------------------------------------------
    def close_client(self, client: Client, error: OSError | None = None) -> None:
        if isinstance(error, (ConnectionError, TimeoutError)):
            log.debug("%s closed: %s", client.address, error)  # reset, broken pipe, idle: routine
        elif error is not None:
            log.warning("%s failed: %s", client.address, error)  # only this client ends
        with self.lock:  # by the thread that holds it: a pool thread, or the main one if idle
            self.epoll.unregister(client.sock.fileno())  # before close(): the fd may be reused
            del self.clients[client.sock.fileno()]
            self.idle.forget(client)
            client.sock.close()  # FIN if all input was read; RST if unread input is dropped
        os.eventfd_write(self.left, 1)  # the main thread counts clients only when it wakes

    # --- stop -------------------------------------------------------------------------
    def stop_accepting(self) -> None:
        self.wakeup.recv(4096)  # a signal's byte, or it stays readable; act on a first stop only
        if not self.stop.requested or self.listener.fileno() == -1:
            return
        if not self.accept_paused:  # a paused listener is unwatched already
            self.epoll.unregister(self.listener_fd)
        self.accept_paused = False  # closed: never watch it again (its fd may be reused)
        self.listener.close()

    def close_all(self) -> None:
        self.pool.shutdown(wait=True)  # jobs never wait on a client: this ends at once
        if self.clients:
            log.warning("drain time over: closing %d connection(s)", len(self.clients))
        for client in list(self.clients.values()):
            self.close_client(client)
        self.epoll.close()


def main(argv: list[str] | None = None) -> int:
    config = parse_config(MODEL, __doc__ or "", argv, workers=DEFAULT_WORKERS)
    EchoServer(config).serve()
    return 0
