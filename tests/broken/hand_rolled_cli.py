"""Broken on purpose: starts up the way many tutorials do, options straight from
sys.argv and a bare bind(). It serves well, but a bad argument or a busy port is a
traceback, and --help and --version are ignored: it starts serving instead."""

import socket
import sys

from common import Config
from common.declaration import Model
from tests.broken.harness import echo_correctly, run

CAUGHT_BY = ("7.7", "7.8", "7.10")


def parse_by_hand(model: Model, description: str) -> Config:
    # DEFECT: no checks, no usage line, no exit 2; unknown options are ignored
    options = dict(zip(sys.argv[1::2], sys.argv[2::2], strict=False))
    return Config(
        host=options.get("--host", "127.0.0.1"),
        port=int(options.get("--port", "7007")),
        backlog=int(options.get("--backlog", "128")),
        buffer_size=int(options.get("--buffer-size", "65536")),
        drain_timeout=float(options.get("--drain-timeout", "5")),
        max_connections=int(options.get("--max-connections", "1000")),
        idle_timeout=float(options.get("--idle-timeout", "0")),
        log_level="INFO",
    )


def listen_by_hand(config: Config) -> socket.socket:
    return socket.create_server(
        (config.host, config.port), backlog=config.backlog
    )  # DEFECT: no error handling


run(echo_correctly, parse=parse_by_hand, start_listening=listen_by_hand)
