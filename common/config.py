"""The command line every server accepts, and the logging it sets up."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from common.declaration import Model

__version__ = "0.1.0"

DEFAULT_HOST = "127.0.0.1"  # loopback: a server nobody asked to expose is not exposed
DEFAULT_PORT = 7007  # RFC 862 echo is port 7, which needs root; 7007 is the unprivileged cousin
DEFAULT_BACKLOG = 128
DEFAULT_BUFFER_SIZE = 64 * 1024
DEFAULT_DRAIN_TIMEOUT = 5.0
DEFAULT_MAX_CONNECTIONS = 1000  # nginx's worker_connections default is 512; threads make 1000 cheap enough
DEFAULT_IDLE_TIMEOUT = 0.0  # off: an echo client may rightly sit silent; set one to shed dead peers

# The most one recv() asks for. Python allocates the full size before the call and
# shrinks it after, so a larger number costs every small read a large allocation.
READ_SIZE = 64 * 1024


@dataclass(frozen=True)
class Config:
    host: str
    port: int
    backlog: int
    buffer_size: int  # cap on bytes owed to one client; at the cap we stop reading from it
    drain_timeout: float  # seconds open connections get to finish after a stop signal
    max_connections: int  # clients served at once; one more is closed as soon as it is accepted
    idle_timeout: float  # seconds without traffic either way before a connection is closed; 0: never
    log_level: str
    workers: int = 0  # threads or processes in a pool, for a model that has one (--workers)
    loop_model: str = ""  # the model whose loop each worker runs, for a model that composes (--model)
    reuse_port: bool = False  # SO_REUSEPORT: processes of one user may each listen on the port


def parse_config(
    model: Model,
    description: str,
    argv: Sequence[str] | None = None,
    *,
    workers: int | None = None,
    loop_model: str | None = None,
) -> Config:
    """Parse the command line (exit 2 on bad arguments), check that this machine has what
    the model needs (exit 1 with one line if not), and set up logging on stderr.

    `workers`: the model serves with a pool of that many threads or processes by default,
    and takes --workers N; the shared command line has no such option. `loop_model`: the
    model runs another model's loop in each worker, that one by default (--model NAME)."""
    parser = argparse.ArgumentParser(
        prog=f"python3 -m {model.name}",
        description=description.strip().splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to listen on (IPv4 or IPv6)")
    parser.add_argument(
        "--port", type=_bounded(int, 0, 65535), default=DEFAULT_PORT, help="TCP port; 0 picks a free one"
    )
    parser.add_argument(
        "--backlog", type=_bounded(int, 0, 65535), default=DEFAULT_BACKLOG, help="listen() queue length"
    )
    parser.add_argument(
        "--buffer-size",
        type=_bounded(int, 1, 2**31),
        default=DEFAULT_BUFFER_SIZE,
        metavar="BYTES",
        help="most bytes owed to one client before the server stops reading from it",
    )
    parser.add_argument(
        "--drain-timeout",
        type=_bounded(float, 0, 24 * 3600),
        default=DEFAULT_DRAIN_TIMEOUT,
        metavar="SECONDS",
        help="after SIGINT/SIGTERM, how long open connections may finish before they are closed",
    )
    parser.add_argument(
        "--max-connections",
        type=_bounded(int, 1, 10**6),
        default=DEFAULT_MAX_CONNECTIONS,
        metavar="N",
        help="clients served at once; a client beyond them is closed as soon as it is accepted",
    )
    parser.add_argument(
        "--idle-timeout",
        type=_bounded(float, 0, 24 * 3600),
        default=DEFAULT_IDLE_TIMEOUT,
        metavar="SECONDS",
        help="close a connection with no traffic in either direction for this long; 0 never does",
    )
    parser.add_argument(
        "--log-level",
        type=str.upper,
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging threshold (logs go to stderr)",
    )
    if workers is not None:
        parser.add_argument(
            "--workers",
            type=_bounded(int, 1, 10**4),
            default=workers,
            metavar="N",
            help="threads or processes in the pool: the most clients served at the same moment",
        )
    if loop_model is not None:
        parser.add_argument(
            "--model", default=loop_model, metavar="NAME", help="the model whose loop each worker runs"
        )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    args = parser.parse_args(argv)
    model.require()
    logging.basicConfig(
        level=args.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    return Config(
        host=args.host,
        port=args.port,
        backlog=args.backlog,
        buffer_size=args.buffer_size,
        drain_timeout=args.drain_timeout,
        max_connections=args.max_connections,
        idle_timeout=args.idle_timeout,
        log_level=args.log_level,
        workers=getattr(args, "workers", 0),
        loop_model=getattr(args, "model", ""),
    )


def _bounded(kind: Callable[[str], float], low: float, high: float) -> Callable[[str], float]:
    """An argparse type: `kind(text)` between low and high, else a usage error."""

    def convert(text: str) -> float:
        value = kind(text)  # ValueError becomes argparse's "invalid value" message
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is not between {low} and {high}")
        return value

    convert.__name__ = kind.__name__
    return convert
