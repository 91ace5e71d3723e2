"""Not ours: echo servers written the minimal way their libraries document, to compare
the six models against. Each takes a port (`python -m bench.peers.asyncio_protocol 7000`)."""
