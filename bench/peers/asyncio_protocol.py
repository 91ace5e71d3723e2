"""Not ours: the asyncio Protocol echo server of asyncio's documentation, nothing added.
`python3 -m bench.peers.asyncio_protocol PORT [uvloop]`: uvloop swaps in its C event loop."""

import asyncio

from bench.peers import serve_forever


class Echo(asyncio.Protocol):
    # uvloop's transports are not subclasses of asyncio's, though they behave the same.
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


serve_forever(lambda port: asyncio.get_running_loop().create_server(Echo, "127.0.0.1", port))
