"""Broken on purpose: sigio without the rescan. When the real-time signal queue is full
(RLIMIT_SIGPENDING), Linux drops the event and sends plain SIGIO, which names no
socket; this server takes SIGIO off the queue and does nothing, so every client whose
signal was dropped waits for an echo that never comes (tests/test_sigio.py)."""

import signal

import sigio.server as model
from common import parse_config
from sigio import MODEL
from sigio.siginfo import Event
from tests.broken.harness import declaration

CAUGHT_BY = ("tests/test_sigio.py",)  # it runs its check against this server


class EchoServer(model.EchoServer):
    def on_signal(self, event: Event) -> None:
        if event.signo == signal.SIGIO:
            return  # DEFECT: the dropped events are forgotten
        super().on_signal(event)


EchoServer(
    parse_config(
        declaration("tests.broken.sigio_ignores_overflow", like=MODEL),
        "sigio that ignores plain SIGIO",
    )
).serve()
