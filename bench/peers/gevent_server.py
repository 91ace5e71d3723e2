"""Not ours: gevent's StreamServer echo, as gevent's documentation writes it: blocking
code in a greenlet per connection, on gevent's event loop (libev).
`python3 -m bench.peers.gevent_server PORT`."""

import socket
import sys

from gevent.server import StreamServer  # type: ignore[import-untyped]  # gevent ships no type hints


# gevent hands us its own socket, cooperative, with the standard socket's methods.
def echo(sock: socket.socket, address: tuple[str, int]) -> None:
    while data := sock.recv(65536):
        sock.sendall(data)


StreamServer(("127.0.0.1", int(sys.argv[1])), echo).serve_forever()
