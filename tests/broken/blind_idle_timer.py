"""Broken on purpose: selectors_mux with the idle timer it had at first, which counts
only its own recv() and send() as traffic. A client reading its echo slowly drains the
kernel's send queue for seconds with no send() of ours in between (the socket turns
writable only once a third of the buffer is free), and is closed as idle mid-read."""

import selectors_mux.server as model
from common import Config, IdleTimer, parse_config
from selectors_mux import MODEL
from tests.broken.harness import declaration

CAUGHT_BY = ("8.5",)


class Blind:
    """A socket that never says what the peer acknowledged, nor what it is owed."""

    def fileno(self) -> int:
        return -1

    def getsockopt(self, level: int, option: int, size: int, /) -> bytes:
        return b""


class EchoServer(model.EchoServer):
    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.idle = IdleTimer(config.idle_timeout, lambda client: Blind())  # DEFECT: asks no socket


EchoServer(
    parse_config(
        declaration("tests.broken.blind_idle_timer", like=MODEL),
        "selectors_mux with a blind idle timer",
    )
).serve()
