"""Broken on purpose: binds with socket.create_server() as it comes, which sets
IPV6_V6ONLY on an IPv6 socket. With --host ::, "every interface", it then serves
IPv6 clients only: an IPv4 client is refused."""

import socket

from common import Config
from tests.broken.harness import echo_correctly, run

CAUGHT_BY = ("7.11",)


def listen_ipv6_only(config: Config) -> socket.socket:
    family, _, _, _, address = socket.getaddrinfo(config.host, config.port, type=socket.SOCK_STREAM)[0]
    return socket.create_server(address, family=family, backlog=config.backlog)  # DEFECT: no dual stack


run(echo_correctly, start_listening=listen_ipv6_only)
