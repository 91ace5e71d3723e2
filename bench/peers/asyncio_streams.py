"""Not ours: the asyncio streams echo server of asyncio's documentation, nothing added.
`python -m bench.peers.asyncio_streams PORT [uvloop]`: uvloop swaps in its C event loop."""

import asyncio
import sys


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(echo, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if sys.argv[2:] == ["uvloop"]:
    import uvloop

    uvloop.run(main(int(sys.argv[1])))
else:
    asyncio.run(main(int(sys.argv[1])))
