"""Not ours: the asyncio Protocol echo server of asyncio's documentation, nothing added.
`python -m bench.peers.asyncio_protocol PORT [uvloop]`: uvloop swaps in its C event loop."""

import asyncio
import sys


class Echo(asyncio.Protocol):
    # uvloop's transports are not subclasses of asyncio's, though they behave the same.
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


async def main(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(Echo, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if sys.argv[2:] == ["uvloop"]:
    import uvloop

    uvloop.run(main(int(sys.argv[1])))
else:
    asyncio.run(main(int(sys.argv[1])))
