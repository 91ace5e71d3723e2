"""Broken on purpose: "fail fast" on any exception no thread handled, and a client's
reset is one, so one client that resets ends the server and every other connection.

Otherwise a correct thread-per-client server with the models' command line and lifecycle.
"""

import argparse
import contextlib
import os
import signal
import socket
import sys
import threading
import time


def serve_client(sock: socket.socket, buffer_size: int) -> None:
    with sock:  # DEFECT: a reset is routine, but nothing here handles ConnectionResetError
        while data := sock.recv(buffer_size):
            sock.sendall(data)


def crash(hook: threading.ExceptHookArgs) -> None:
    threading.__excepthook__(hook)  # the usual traceback on stderr, then:
    os._exit(1)  # fail fast: an exception no thread handled is taken for a bug


parser = argparse.ArgumentParser(description="a deliberately broken echo server")
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=7007)
parser.add_argument("--buffer-size", type=int, default=65536)
parser.add_argument("--drain-timeout", type=float, default=5.0)
parser.add_argument("--backlog")  # accepted and ignored
parser.add_argument("--log-level")  # accepted and ignored
parser.add_argument("--version", action="version", version="%(prog)s 0.1.0")
args = parser.parse_args()
threading.excepthook = crash
if not 0 <= args.port <= 65535 or args.buffer_size < 1 or args.drain_timeout < 0:
    parser.error("--port, --buffer-size or --drain-timeout out of range")
try:
    listener = socket.create_server((args.host, args.port), family=socket.getaddrinfo(args.host, 0)[0][0])
except OSError as error:
    sys.exit(f"error: cannot listen on {args.host}:{args.port}: {error.strerror}")
stopping = threading.Event()
for stop_signal in (signal.SIGINT, signal.SIGTERM):  # before the ready line: a stop may follow it
    signal.signal(stop_signal, lambda signum, frame: stopping.set())
host, port = listener.getsockname()[:2]
print(f"listening on {f'[{host}]' if ':' in host else host}:{port}", flush=True)
listener.settimeout(0.05)  # accept() returns often enough to see the stop flag
while not stopping.is_set():
    with contextlib.suppress(TimeoutError):
        threading.Thread(target=serve_client, args=(listener.accept()[0], args.buffer_size)).start()
for stop_signal in (signal.SIGINT, signal.SIGTERM):  # from now on a stop signal exits at once
    signal.signal(stop_signal, lambda signum, frame: os._exit(128 + signum))
listener.close()  # new clients are refused; open ones get the drain time
deadline = time.monotonic() + args.drain_timeout
while threading.active_count() > 1 and time.monotonic() < deadline:
    time.sleep(0.01)
os._exit(0)  # not sys.exit(), which would wait for client threads blocked in recv()
