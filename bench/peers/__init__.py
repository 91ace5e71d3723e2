"""Not ours: echo servers written the minimal way their libraries document, to compare
the models against. Each takes a port (`python3 -m bench.peers.asyncio_protocol 7000`)."""

import asyncio
import sys
from collections.abc import Awaitable, Callable


def serve_forever(start: Callable[[int], Awaitable[asyncio.Server]]) -> None:
    """Serve start(port)'s server until killed, on the event loop the command line names:
    asyncio's own, or uvloop's (`PORT uvloop`), which swaps in a loop written in C."""

    async def main(port: int) -> None:
        async with await start(port) as server:
            await server.serve_forever()

    port = int(sys.argv[1])
    if sys.argv[2:] == ["uvloop"]:
        import uvloop  # noqa: PLC0415 -- optional: imported only when asked for

        uvloop.run(main(port))
    else:
        asyncio.run(main(port))
