"""Broken on purpose: binds with a bare socket.create_server((host, port)) and lets
whatever it raises escape. A busy port, a host name nobody resolves and a host the
idna codec refuses ("a..b") each end in a traceback, not one line and exit 1."""

import socket

from common import Config
from tests.broken.harness import echo_correctly, run

CAUGHT_BY = ("7.7",)


def listen_bare(config: Config) -> socket.socket:
    return socket.create_server((config.host, config.port), backlog=config.backlog)  # DEFECT: no except


run(echo_correctly, start_listening=listen_bare)
