"""What every broken server shares: the models' command line and lifecycle, done the
plain way (a thread per client), so a test that fails against one fails for its defect.

Each broken server is one classic mistake: most in their own `serve_client`, handed to
run(); the rest in how they ask run() to start, accept or stop, serving with
`echo_correctly`. Run one as `python -m tests.broken.NAME`; the suite selects it with
`--models broken/NAME`. Out of descriptors, it pauses accepting as the models do.

Run on its own (`--models broken/harness`) it is the positive control: with no
defect, it passes every case its plain design can (tests/test_suite_can_fail.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable

import __main__
from common import STOP_SIGNALS, AcceptPause, Config, ConnectionLimit, announce, listen, parse_config
from common.declaration import Family, Model

ServeClient = Callable[[socket.socket, int], None]
ParseConfig = Callable[[Model, str], Config]
Listen = Callable[[Config], socket.socket]
AfterAcceptError = Callable[[OSError | RuntimeError], None]


ACCEPT_PAUSE = AcceptPause()
log = logging.getLogger("harness")


def pause_accepting(error: OSError | RuntimeError) -> None:
    """What the models do when accept() fails: wait a moment, logged once per spell."""
    time.sleep(ACCEPT_PAUSE.after(error))


def declaration(program: str, like: Model | None = None) -> Model:
    """A broken server's declaration: the harness's own, or a model's under its new name."""
    if like is not None:
        return dataclasses.replace(like, name=program)
    return Model(
        program,
        order=0,
        family=Family.PER_CONNECTION,
        builds_on=None,
        changes="one classic mistake",
        waits="a thread per client, blocked in recv() and sendall()",
        costs="whatever its defect costs",
        picks_up="its client's thread, blocked in recv()",
        owed="in that thread, blocked in sendall()",
    )


def echo_correctly(sock: socket.socket, buffer_size: int) -> None:
    """serve_client done right, for the broken servers whose defect lies elsewhere."""
    with sock, contextlib.suppress(OSError):  # a reset or broken pipe ends this client only
        while data := sock.recv(buffer_size):
            sock.sendall(data)


def counted(serve_client: ServeClient, served: set[socket.socket]) -> ServeClient:
    """serve_client, with the client in `served` while it runs."""

    def serve(sock: socket.socket, buffer_size: int) -> None:
        served.add(sock)
        try:
            serve_client(sock, buffer_size)
        finally:
            served.discard(sock)

    return serve


def run(
    serve_client: ServeClient,
    *,
    accept_timeout: float | None = 0.05,
    threads: bool = True,
    parse: ParseConfig = parse_config,
    start_listening: Listen = listen,
    after_accept_error: AfterAcceptError = pause_accepting,
    limit_connections: bool = True,
) -> None:
    """Serve until a stop signal; then drain for --drain-timeout and exit 0."""
    # The module run with -m names the program: the broken server, not this harness.
    program = __main__.__spec__.name if __main__.__spec__ else serve_client.__module__
    config = parse(declaration(program), "a deliberately broken echo server")
    listener = start_listening(config)
    stopping = threading.Event()
    for stop_signal in STOP_SIGNALS:  # before the ready line: a stop may follow it at once
        signal.signal(stop_signal, lambda signum, frame: stopping.set())
    announce(listener)
    listener.settimeout(accept_timeout)  # accept() returns often enough to see the flag
    limit = ConnectionLimit(config.max_connections)
    served: set[socket.socket] = set()  # add and discard are atomic under the GIL
    serve = counted(serve_client, served)
    while not stopping.is_set():
        try:
            sock, address = listener.accept()
        except TimeoutError:
            continue
        except OSError as error:  # out of descriptors, say
            after_accept_error(error)
            continue
        log.debug("%s connected", address)
        if limit_connections and not limit.admits(len(served)):
            sock.close()
            continue
        # --idle-timeout: recv() and sendall() raise TimeoutError after that long
        sock.settimeout(config.idle_timeout or None)
        if threads:
            try:
                threading.Thread(target=serve, args=(sock, config.buffer_size)).start()
            except RuntimeError as error:  # can't start new thread: turn this one away
                sock.close()
                after_accept_error(error)
        else:
            serve(sock, config.buffer_size)
    for stop_signal in STOP_SIGNALS:  # from now on a stop signal exits at once
        signal.signal(stop_signal, lambda signum, frame: os._exit(128 + signum))
    listener.close()  # new clients are refused; open ones get the drain time
    deadline = time.monotonic() + config.drain_timeout
    while threading.active_count() > 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    os._exit(0)  # not sys.exit(), which would wait for client threads blocked in recv()


if __name__ == "__main__":
    run(echo_correctly)
