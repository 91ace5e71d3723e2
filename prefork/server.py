"""prefork: a master process that only supervises, and N worker processes that serve,
each running one of the other models' loops (epoll_mux unless --model says otherwise).

How it waits: in two kinds of process. Each worker waits where its loop waits (in
epoll, for epoll_mux), on a listener of its own. The master serves no one: it blocks
its signals and waits for them in sigwaitinfo(), the one place it blocks, until a
worker exits (SIGCHLD) or a stop signal comes.

What changes from epoll_mux: nothing inside the loop. This file is about processes
alone: start N copies of a loop, replace one that dies, stop them all together. On
N cores, N loops run at once, where one Python process runs one at a time (the GIL).

Listeners: each worker binds the port with SO_REUSEPORT and listens on a socket of its
own, and the kernel hashes each new connection to one of them. One listener inherited
by every worker works too, but spreads clients unevenly: docs/prefork.md measures both.
The first worker binds the port (0 becomes a real one); the others join it.

What it costs: a process (an interpreter, its memory) per worker; and each worker
enforces --max-connections and the EMFILE pause on its own, not for the whole server.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import inspect
import logging
import os
import signal
import sys
import traceback
from types import ModuleType
from typing import NoReturn

from common import STOP_SIGNALS, Config, StopRequest, parse_config
from common.orphans import die_with_parent
from prefork import DEFAULT_LOOP, MODEL

log = logging.getLogger("prefork")

# What the master waits for, blocked so that each waits for sigwaitinfo() instead of
# interrupting the master wherever it is: a worker's exit, and the stop signals.
MASTER_SIGNALS = {signal.SIGCHLD, *STOP_SIGNALS}
# After the drain time, how long a worker may take to close what is left and exit
# before the master kills it.
EXIT_GRACE = 1.0


def loop_of(name: str) -> ModuleType:
    """The server module of the model each worker runs; exit 1 with one line if none."""
    if name == MODEL.name:
        raise SystemExit(f"error: --model {name}: a worker runs a loop, not another master")
    try:
        declared = importlib.import_module(name).MODEL
        loop = importlib.import_module(f"{name}.server")
    except (ImportError, AttributeError, ValueError):
        raise SystemExit(f"error: --model {name}: no such model") from None
    declared.require()  # what that model needs: epoll_mux, Linux's epoll
    return loop


def exit_reason(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"was killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited with status {os.waitstatus_to_exitcode(status)}"


class EchoServer:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.stop = StopRequest(config.drain_timeout)
        self.loop = loop_of(config.loop_model)
        self.port = config.port  # 0 until the first worker has bound a real one
        self.workers: set[int] = set()  # their process ids
        self.master = os.getpid()  # each worker checks that its master is still this one

    # --- listen -----------------------------------------------------------------------
    def listen(self) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, MASTER_SIGNALS)  # before the first fork: none lost
        ready_line = ""
        for _ in range(self.config.workers):
            ready_line = self.start_worker()
        print(ready_line, flush=True)  # the server's ready line: once, with every worker up

    def start_worker(self) -> str:
        """Fork a worker and wait until it listens; return the ready line it printed."""
        ready, ready_writer = os.pipe()
        sys.stdout.flush()  # or the child would print the master's unflushed output again
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            os.close(ready)
            self.work(ready_writer)
        os.close(ready_writer)
        self.workers.add(pid)
        with open(ready) as pipe:
            line = pipe.readline().strip()  # WAIT: until the worker listens, or dies (EOF)
        if not line:  # it could not listen (its own error line is on stderr), or was killed
            _, status = os.waitpid(pid, 0)
            self.workers.discard(pid)
            if os.WIFSIGNALED(status):  # else it said why, in its one error line
                log.error("worker %d %s before it was ready", pid, exit_reason(status))
            raise SystemExit(1)  # the other workers die with the master (die_with_parent)
        self.port = int(line.rsplit(":", 1)[1])  # the workers after the first join this port
        return line

    # --- wait -------------------------------------------------------------------------
    def serve(self) -> None:
        self.listen()
        while self.workers:
            timeout = self.stop.timeout()
            # WAIT: the master's one wait, until a worker exits or a stop signal comes;
            # after a stop, until the drain time is up. The signals are blocked, so they
            # queue for this call instead of interrupting the master anywhere else.
            if timeout is None:
                signum: int | None = signal.sigwaitinfo(MASTER_SIGNALS).si_signo
            else:
                waited = signal.sigtimedwait(MASTER_SIGNALS, timeout + EXIT_GRACE)
                signum = waited.si_signo if waited else None
            if signum is None:
                self.close_all()  # drain time and grace are up: workers still running
            elif signum == signal.SIGCHLD:
                self.reap()
            else:
                self.stop.request(signum)  # the second one exits the master at once
                self.stop_accepting()

    # --- accept -----------------------------------------------------------------------
    def work(self, ready_writer: int) -> NoReturn:
        """A worker's whole life, in the forked child: its loop accepts, reads, writes and
        closes, then the child exits. It never returns into the master's code."""
        status = 1
        try:
            # A group of its own: a terminal's Ctrl-C reaches only the master, which
            # forwards one SIGTERM (two would mean "exit at once" to the loop).
            os.setpgid(0, 0)
            die_with_parent(self.master)  # no orphan, however the master dies
            signal.pthread_sigmask(signal.SIG_UNBLOCK, MASTER_SIGNALS)  # the loop's own handlers take them
            os.dup2(ready_writer, sys.stdout.fileno())  # its ready line goes to the master
            os.close(ready_writer)
            worker = dataclasses.replace(self.config, port=self.port, reuse_port=True)
            serving = self.loop.EchoServer(worker).serve()
            if inspect.iscoroutine(serving):  # asyncio_io's serve() is a coroutine
                asyncio.run(serving)
            status = 0
        except SystemExit as error:  # the loop's one-line error: the port is taken, ...
            sys.stderr.write(f"{error}\n")
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stderr.flush()
            os._exit(status)  # not sys.exit(): no cleanup of the master's, in a copy of it

    # --- read -------------------------------------------------------------------------
    # The workers read, each in its own loop: see the --model's server.py.

    # --- write ------------------------------------------------------------------------
    # The workers write, each in its own loop.

    # --- close ------------------------------------------------------------------------
    def reap(self) -> None:
        """Collect every worker that has exited (one SIGCHLD may stand for several), and
        replace it unless the server is stopping. Its clients were its own: the other
        workers' clients lose nothing."""
        while self.workers:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                return  # the others still run
            self.workers.discard(pid)
            if not self.stop.requested:
                log.warning("worker %d %s; starting another", pid, exit_reason(status))
                self.start_worker()

    # --- stop -------------------------------------------------------------------------
    def stop_accepting(self) -> None:
        # Each worker stops accepting and drains as its loop does; the master waits.
        for pid in self.workers:
            os.kill(pid, signal.SIGTERM)

    def close_all(self) -> None:
        log.warning("drain time over: killing %d worker(s)", len(self.workers))
        for pid in self.workers:
            os.kill(pid, signal.SIGKILL)  # the kernel closes whatever it had open
        for pid in self.workers.copy():
            os.waitpid(pid, 0)
            self.workers.discard(pid)


def main(argv: list[str] | None = None) -> int:
    config = parse_config(
        MODEL, __doc__ or "", argv, workers=os.cpu_count() or 1, loop_model=DEFAULT_LOOP.name
    )
    EchoServer(config).serve()
    return 0
