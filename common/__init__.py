"""What the servers truly share: the command line (config.py); the listening socket,
the ready line and the stop-signal policy (lifecycle.py); and the decisions behind
--max-connections, --idle-timeout and a failed accept() (limits.py). Nothing here reads,
writes, waits or accepts for a server: every `accept`, `recv`, `send`, `select` and
`close` lives in `<model>/server.py`.
"""

from common.config import READ_SIZE, Config, __version__, parse_config
from common.lifecycle import STOP_SIGNALS, StopRequest, announce, listen
from common.limits import ACCEPT_BATCH, AcceptPause, ConnectionLimit, IdleTimer, Refusals, earliest

__all__ = [
    "ACCEPT_BATCH",
    "READ_SIZE",
    "STOP_SIGNALS",
    "AcceptPause",
    "Config",
    "ConnectionLimit",
    "IdleTimer",
    "Refusals",
    "StopRequest",
    "__version__",
    "announce",
    "earliest",
    "listen",
    "parse_config",
]
