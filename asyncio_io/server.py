"""asyncio_io: one thread, asyncio's event loop, and a Protocol per connection.

How it waits: the event loop is selectors_mux, grown up and hidden. Sockets are
non-blocking, a selector (epoll on Linux) watches them, and when one is ready the loop
calls our callbacks. The one place this server blocks is inside the loop's
selector.select(); our code only ever runs between two of those waits.

Why Protocols, not streams: a Protocol's callbacks are our vocabulary one to one:
connection_made (accept), data_received (read), transport.write (write: it sends at
once and keeps the rest, our outbuf), eof_received (half-close), connection_lost
(close); and they cost no coroutine, task or await per chunk. Streams would wrap the
same Protocol in a task per client, to let code read top to bottom like blocking's.

Backpressure: the transport calls pause_writing() once its write buffer passes the
high-water mark (--buffer-size) and resume_writing() once it drains below a quarter of
it; we answer by pausing and resuming reading. The transport reads up to 256 KiB at a
time, so a client's buffer may overshoot the cap by one read, and no more.

Half-close: eof_received() returns False, so the transport closes itself, and a
transport's close() first sends everything still in its buffer: no owed byte is lost.
"""

from __future__ import annotations

import asyncio
import logging
from asyncio.constants import ACCEPT_RETRY_DELAY
from typing import Any

from asyncio_io import MODEL
from common import (
    ACCEPT_BATCH,
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

log = logging.getLogger("asyncio_io")


class EchoServer:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.stop = StopRequest(config.drain_timeout)
        self.limit = ConnectionLimit(config.max_connections)
        self.accept_pause = AcceptPause(ACCEPT_RETRY_DELAY)  # asyncio's own pause, not ours
        self.idle: IdleTimer[EchoServer.EchoProtocol] = IdleTimer(
            config.idle_timeout, lambda client: client.transport.get_extra_info("socket")
        )
        self.clients: set[EchoServer.EchoProtocol] = set()

    # --- listen -----------------------------------------------------------------------
    async def listen(self) -> None:
        loop = asyncio.get_running_loop()
        self.listener = listen(self.config)  # the same socket as every model; asyncio adopts it
        # asyncio's backlog is two things: the listen() queue, and how many accept() calls
        # it makes per wakeup, each retried and reported on failure. So a batch, bounded
        # (at 0 it would never accept; at 65535, out of descriptors, it would spin), and
        # then the queue the user asked for, set again.
        self.server = await loop.create_server(
            lambda: self.EchoProtocol(self), sock=self.listener, backlog=ACCEPT_BATCH
        )
        self.listener.listen(self.config.backlog)
        # Out of descriptors (EMFILE), asyncio's accept stops watching the listener and
        # tries again a second later, on its own; it reports each failure to the loop's
        # exception handler, which ours quiets to one line per spell.
        loop.set_exception_handler(self.loop_error)
        if self.config.idle_timeout:
            self.idle_sweeper = asyncio.create_task(self.close_idle_clients())
        self.stopping = asyncio.Event()
        for signum in STOP_SIGNALS:  # asyncio's own wakeup socket, as in selectors_mux
            loop.add_signal_handler(signum, self.stop_signal, signum)
        announce(self.listener)

    # --- wait -------------------------------------------------------------------------
    async def serve(self) -> None:
        await self.listen()
        # WAIT: the loop blocks in its selector, running callbacks, until a stop signal.
        await self.stopping.wait()
        await self.stop_accepting()
        await self.close_all()

    def loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        error = context.get("exception")
        # asyncio schedules a retry for each failed accept() of a batch (CPython
        # gh-151615); those still pending when a stop closes the listener find fd -1.
        late_retry = self.stop.requested and "_start_serving" in context["message"]
        if isinstance(error, OSError) and context["message"].startswith("socket.accept()"):
            self.accept_pause.after(error)  # logs once per spell; asyncio itself waits
        elif isinstance(error, ValueError) and late_retry:
            log.debug("accept retry after the stop: %s", error)
        else:
            loop.default_exception_handler(context)

    async def close_idle_clients(self) -> None:
        # asyncio has no idle timeout of its own: one task sweeps every --idle-timeout.
        while True:
            next_expiry = self.idle.timeout()
            await asyncio.sleep(self.config.idle_timeout if next_expiry is None else next_expiry)
            for client in self.idle.expired():
                log.debug("%s closed: idle for %gs", client.address, self.config.idle_timeout)
                client.transport.abort()  # nothing moved for that long: owed bytes would not

    # --- accept -----------------------------------------------------------------------
    class EchoProtocol(asyncio.Protocol):
        """One connection. The loop calls these methods; none of them may block."""

        def __init__(self, server: EchoServer) -> None:  # asyncio accepted: a transport comes
            self.server = server
            self.closed = asyncio.get_running_loop().create_future()  # done in connection_lost
            server.clients.add(self)  # counted from now on: a stop that comes first drains it too

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            self.transport = transport
            self.address = transport.get_extra_info("peername")
            self.server.accept_pause.accepted()
            if not self.server.limit.admits(len(self.server.clients) - 1):  # the others
                transport.close()  # at --max-connections: the client sees its connection end at once
                return
            transport.set_write_buffer_limits(high=self.server.config.buffer_size)
            self.server.clients.add(self)
            self.server.idle.touch(self)
            log.debug("%s connected", self.address)

        # --- read ---------------------------------------------------------------------
        def data_received(self, data: bytes) -> None:
            self.transport.write(data)  # sends at once; what the kernel does not take is kept
            self.server.idle.touch(self)

        def eof_received(self) -> bool:
            self.server.idle.touch(self)
            return False  # half-close: close, which flushes what we still owe, then sends FIN

        # --- write --------------------------------------------------------------------
        def pause_writing(self) -> None:
            self.transport.pause_reading()  # we owe it --buffer-size: stop reading it

        def resume_writing(self) -> None:
            # The client read what we owed it down to a quarter of the cap. Between these
            # callbacks, the idle timer sees its progress in the kernel's send queue.
            self.server.idle.touch(self)
            self.transport.resume_reading()

        # --- close --------------------------------------------------------------------
        def connection_lost(self, error: Exception | None) -> None:
            if isinstance(error, ConnectionError):
                log.debug("%s closed: %s", self.address, error)  # reset or broken pipe: routine
            elif error is not None:
                log.warning("%s failed: %s", self.address, error)  # only this client ends
            self.server.clients.discard(self)
            self.server.idle.forget(self)
            self.closed.set_result(None)

    # --- stop -------------------------------------------------------------------------
    def stop_signal(self, signum: int) -> None:
        self.stop.request(signum)  # a second signal exits at once, from in here
        self.stopping.set()

    async def stop_accepting(self) -> None:
        asyncio.get_running_loop().remove_reader(self.listener.fileno())  # no accept from now
        # One accepted just before gets its protocol and transport in a callback already
        # queued (first in, first out): let it run while the server can still take it in.
        await asyncio.sleep(0)
        self.server.close()  # closes the listener; open connections carry on

    async def close_all(self) -> None:
        if self.clients:  # drain: wait for every connection to close, up to the deadline
            await asyncio.wait([client.closed for client in self.clients], timeout=self.stop.timeout())
        if self.clients:
            log.warning("drain time over: closing %d connection(s)", len(self.clients))
        for client in list(self.clients):
            client.transport.abort()  # close now, dropping what it still owes
        await asyncio.sleep(0)  # let the loop run their connection_lost callbacks


def main(argv: list[str] | None = None) -> int:
    config = parse_config(MODEL, __doc__ or "", argv)
    asyncio.run(EchoServer(config).serve())
    return 0
