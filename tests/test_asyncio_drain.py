"""asyncio_io: a connection asyncio accepts in the same loop pass as a stop is drained.

No black-box case can aim a stop at one loop pass, so this runs asyncio_io's EchoServer
in this process and wraps the loop's accept callback (selector_events'
`_accept_connection`, private, the same in 3.10 to 3.13) so the stop lands in the pass
of an accept, just before or just after it. The client then sends, half-closes, and
must get its echo and a FIN. Before the fix, with the stop first, the accepted
connection got a protocol only after the server had closed: asyncio refused to attach
its transport, and the client was never served (its socket stayed open until exit).
"""

from __future__ import annotations

import asyncio
import signal
import socket
from typing import Any

import pytest

from asyncio_io import MODEL
from asyncio_io.server import EchoServer
from common import parse_config


async def serve_one_client_across_a_stop(order: str) -> socket.socket:
    config = parse_config(
        MODEL,
        "asyncio_io, in process",
        ["--port", "0", "--drain-timeout", "2", "--log-level", "ERROR"],
    )
    loop = asyncio.get_running_loop()
    server = EchoServer(config)
    accept = loop._accept_connection  # type: ignore[attr-defined]

    def accept_in_the_stop_pass(*args: Any, **kwargs: Any) -> None:
        if order == "stop, then accept":
            server.stop_signal(signal.SIGTERM)
        accept(*args, **kwargs)
        if order == "accept, then stop":
            server.stop_signal(signal.SIGTERM)

    loop._accept_connection = accept_in_the_stop_pass  # type: ignore[attr-defined]
    serving = asyncio.create_task(server.serve())
    while not hasattr(server, "stopping"):  # until it listens
        await asyncio.sleep(0.01)
    client = socket.create_connection(server.listener.getsockname()[:2])
    client.sendall(b"hello")
    client.shutdown(socket.SHUT_WR)
    await asyncio.wait_for(serving, 10)
    return client


@pytest.mark.timeout(30)
@pytest.mark.parametrize("order", ["stop, then accept", "accept, then stop"])
def test_a_connection_accepted_as_the_stop_comes_is_drained(order: str) -> None:
    with asyncio.run(serve_one_client_across_a_stop(order)) as client:
        client.settimeout(2)
        received = b""
        try:
            while chunk := client.recv(64):
                received += chunk
        except (ConnectionError, TimeoutError) as error:
            pytest.fail(f"{type(error).__name__} after {received!r}: the connection escaped the drain")
    assert received == b"hello"
