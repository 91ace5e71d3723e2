"""Broken on purpose: selectors_mux with the --max-connections log it had at first, one
line per spell at the limit, where the next admitted client ends the spell. With
clients churning at the limit (one leaves, one comes in, the next is refused) every
refusal starts a spell: one line per refused client, a flood of lines."""

import logging

import selectors_mux.server as model
from common import Config, parse_config
from selectors_mux import MODEL
from tests.broken.harness import declaration

CAUGHT_BY = ("8.6",)

log = logging.getLogger("limits")


class OneLinePerSpell:
    def __init__(self, maximum: int) -> None:
        self.maximum = maximum
        self.refusing = False

    def admits(self, open_connections: int) -> bool:
        if open_connections < self.maximum:
            self.refusing = False  # DEFECT: a spell ends at each admitted client, not by time
            return True
        if not self.refusing:
            log.warning("at --max-connections %d: closing new clients until one leaves", self.maximum)
            self.refusing = True
        return False


class EchoServer(model.EchoServer):
    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.limit = OneLinePerSpell(config.max_connections)  # type: ignore[assignment]


EchoServer(
    parse_config(
        declaration("tests.broken.log_per_spell", like=MODEL),
        "selectors_mux logging a line per spell",
    )
).serve()
