"""ServerProcess trusts only its own server: a port that accepts is not enough."""

from __future__ import annotations

import socket

import pytest

from toolkit import process
from toolkit.process import ServerNotReady, ServerProcess, ServerSpec


@pytest.mark.timeout(30)
def test_a_port_someone_else_listens_on_is_not_the_server_being_ready(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as other:
        # The free port the server was to have, taken by another listener meanwhile;
        # the server itself runs but never listens.
        monkeypatch.setattr(process, "free_port", lambda: other.getsockname()[1])
        never_listens = ServerSpec("sleeper", ("sleep", "30", "{port}"))
        with pytest.raises(ServerNotReady, match="not ready within"):
            ServerProcess(never_listens, ready_timeout=1.0)
