"""Not ours: the asyncio streams echo server of asyncio's documentation, nothing added.
`python3 -m bench.peers.asyncio_streams PORT [uvloop]`: uvloop swaps in its C event loop."""

import asyncio

from bench.peers import serve_forever


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


serve_forever(lambda port: asyncio.start_server(echo, "127.0.0.1", port))
