"""Not ours: an echo server in a handful of lines of the standard library's socketserver, to
check the suite against a server written without it in mind. Run it with a port:
`python tests/third_party/socketserver_echo.py 7000`."""

import socketserver
import sys


class Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


with socketserver.ThreadingTCPServer(("127.0.0.1", int(sys.argv[1])), Echo) as server:
    server.serve_forever()
