"""Not ours: socketserver_echo.py with a process per client, the standard library's
ForkingTCPServer: forking's nearest peer in the benchmark. Run it with a port:
`python tests/third_party/socketserver_forking_echo.py 7000`."""

import socketserver
import sys


class Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


with socketserver.ForkingTCPServer(("127.0.0.1", int(sys.argv[1])), Echo) as server:
    server.serve_forever()
