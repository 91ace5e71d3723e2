"""What epoll reports for a client's reset, under each interest epoll_mux can have.

epoll_mux reads only on EPOLLIN and otherwise calls write(), which learns of an error
from send(). That is safe only if EPOLLERR/EPOLLHUP without EPOLLIN never reach a
client owed nothing: with nothing to send, write() would say nothing, and level-
triggered epoll would report the same event again at once, a spin. This pins the
kernel behaviour that rules it out: the error comes with EPOLLIN when EPOLLIN is
watched, with EPOLLOUT when only that is (then we owe bytes), and alone only for an
empty interest, which a live client never has (see epoll_mux's write()).
"""

from __future__ import annotations

import select
import socket
import struct

import pytest

pytestmark = pytest.mark.skipif(not hasattr(select, "epoll"), reason="epoll is Linux's")

ERROR = select.EPOLLERR | select.EPOLLHUP


def events_after_reset(interest: int) -> int:
    """The events epoll reports for a server-side socket whose client has reset."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server_side, _ = listener.accept()
        with server_side, select.epoll() as epoll:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()  # an RST
            epoll.register(server_side.fileno(), interest)
            [(_, events)] = epoll.poll(5.0)
            return events


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("interest", "comes_with"),
    [(select.EPOLLIN, select.EPOLLIN), (select.EPOLLOUT, select.EPOLLOUT), (0, 0)],
    ids=["EPOLLIN", "EPOLLOUT", "nothing"],
)
def test_a_reset_comes_with_what_is_watched(interest: int, comes_with: int) -> None:
    events = events_after_reset(interest)
    assert events & ERROR == ERROR
    assert events & (select.EPOLLIN | select.EPOLLOUT) == comes_with
