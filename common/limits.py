"""The connection limit every model enforces the same way (--max-connections).

Deciding is shared; acting is not: each server.py closes the extra client itself, right
after its own accept(), so a reader sees where the client goes.
"""

from __future__ import annotations

import logging

log = logging.getLogger("limits")


class ConnectionLimit:
    """Whether one more client may be served, with one log line per spell at the limit.

    A line per refused client would let a flood of connections flood the log too; one
    line when the limit is reached says the same, and the next admitted client ends
    the spell, so the next time the limit is reached is logged again.
    """

    def __init__(self, maximum: int) -> None:
        self.maximum = maximum
        self.refusing = False

    def admits(self, open_connections: int) -> bool:
        if open_connections < self.maximum:
            self.refusing = False
            return True
        if not self.refusing:
            log.warning("at --max-connections %d: closing new clients until one leaves", self.maximum)
            self.refusing = True
        return False
