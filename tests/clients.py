"""Clients for the conformance tests: connect, echo, read exactly or until EOF, reset.

Every call is bounded by a timeout: a server under test may never answer.
"""

from __future__ import annotations

import selectors
import socket
import struct
import time
from concurrent.futures import ThreadPoolExecutor

from toolkit.process import Address

IO_TIMEOUT = 5.0  # how long an echo may take before it counts as never coming


def connect(address: Address, *, rcvbuf: int | None = None, timeout: float = IO_TIMEOUT) -> socket.socket:
    """A client socket connected to address; each send or recv on it times out after timeout."""
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    if rcvbuf is not None:
        # Before connect(): the window scale is agreed in the handshake, from the buffer
        # size at that moment. Shrinking the buffer later can stall the window.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(timeout)
    try:
        sock.connect(address)
    except BaseException:
        sock.close()
        raise
    return sock


def connect_served(address: Address, number: int) -> socket.socket:
    """A client the server has accepted and served once. Opening many clients this way,
    one after another, keeps the listen backlog short: a burst of connects overflows a
    small backlog (socketserver's is 5), and each dropped SYN costs a second or more
    before the kernel retries it."""
    sock = connect(address)
    try:
        greeting = f"client {number}".encode()
        assert echo(sock, greeting) == greeting
    except BaseException:
        sock.close()
        raise
    return sock


def open_clients(address: Address, count: int, *, batch: int = 100) -> list[socket.socket]:
    """Many clients, connected in batches that each get one echo before the next batch
    connects: at most `batch` handshakes wait in the listen backlog at once, so none of
    them is dropped there (a dropped SYN costs a second before the kernel retries).
    A client the server turned away is still in the list, closed by the server."""
    clients: list[socket.socket] = []
    try:
        for start in range(0, count, batch):
            wave = [connect(address) for _ in range(min(batch, count - start))]
            clients += wave
            echo_on_each(wave)
    except BaseException:
        for sock in clients:
            sock.close()
        raise
    return clients


def echo_on_each(clients: list[socket.socket], *, timeout: float = 60.0) -> tuple[int, int]:
    """Send every client a message of its own at once, then read each one back.

    Returns (echoed, turned_away): a client whose connection the server ended (EOF or
    reset) counts as turned away. Wrong bytes, or silence past the timeout, fail.
    """
    expected = {sock: f"<{sock.fileno()}:{time.monotonic_ns()}>".encode() for sock in clients}
    received = {sock: b"" for sock in clients}
    turned_away = 0
    with selectors.DefaultSelector() as selector:
        for sock, message in expected.items():
            try:
                sock.sendall(message)  # a few bytes: the send buffer takes them at once
                selector.register(sock, selectors.EVENT_READ, sock)
            except ConnectionError:
                turned_away += 1
        deadline = time.monotonic() + timeout
        while selector.get_map():
            left = deadline - time.monotonic()
            ready = selector.select(left) if left > 0 else []
            assert ready, f"{len(selector.get_map())} of {len(clients)} clients got no echo in {timeout}s"
            for key, _ in ready:
                sock = key.data  # the socket itself, registered as the key's data
                try:
                    data = sock.recv(64)
                except ConnectionError:
                    data = b""
                if not data:
                    assert not received[sock], f"the echo ended early: {received[sock]!r}"
                    turned_away += 1
                    selector.unregister(sock)
                    continue
                received[sock] += data
                assert expected[sock].startswith(received[sock]), (received[sock], expected[sock])
                if received[sock] == expected[sock]:
                    selector.unregister(sock)
    return len(clients) - turned_away, turned_away


def served(address: tuple[str, int]) -> bool:
    """Is a new client served now? A refusal is an answer too: False, not an error."""
    with connect(address) as sock:
        try:
            return echo(sock, b"served?") == b"served?"
        except (ConnectionError, AssertionError, TimeoutError):  # turned away, or not yet
            return False


def connection_refused(address: Address) -> bool:
    """Does a new connection to address get refused (nobody listening any more)?"""
    try:
        probe = connect(address, timeout=1.0)
    except ConnectionRefusedError:
        return True
    except ConnectionResetError:
        return False  # the listener closed during our handshake: ask again, it is going
    probe.close()  # accepted: close at once, so the server is not left holding it
    return False


def reset(sock: socket.socket) -> None:
    """Close abruptly: SO_LINGER with a zero timeout makes close() send RST, not FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def recv_some(sock: socket.socket, limit: int, *, received: int, expected: int | None = None) -> bytes:
    """One recv() of at most limit bytes. Past the socket's timeout, the TimeoutError
    says how far the transfer got: "timed out" alone tells a reader nothing."""
    try:
        return sock.recv(limit)
    except TimeoutError:
        of = "" if expected is None else f" of {expected}"
        raise TimeoutError(
            f"got {received}{of} bytes, then neither data nor EOF for {sock.gettimeout()}s"
        ) from None


def recv_exactly(sock: socket.socket, size: int, *, timeout: float = IO_TIMEOUT) -> bytes:
    """Exactly size bytes; AssertionError on an early EOF, TimeoutError past the deadline."""
    received = bytearray()
    deadline = time.monotonic() + timeout
    while len(received) < size:
        chunk = recv_some(sock, size - len(received), received=len(received), expected=size)
        assert chunk, f"EOF after {len(received)} of {size} bytes"
        received += chunk
        if time.monotonic() > deadline:
            raise TimeoutError(f"got {len(received)} of {size} bytes in {timeout}s")
    return bytes(received)


def recv_until_eof(sock: socket.socket, *, timeout: float = IO_TIMEOUT) -> bytes:
    """Everything until the server's FIN. A reset raises ConnectionResetError."""
    received = bytearray()
    deadline = time.monotonic() + timeout
    while chunk := recv_some(sock, 1 << 16, received=len(received)):
        received += chunk
        if time.monotonic() > deadline:
            raise TimeoutError(f"no EOF within {timeout}s ({len(received)} bytes received)")
    return bytes(received)


def echo(sock: socket.socket, payload: bytes) -> bytes:
    """Send a payload small enough to fit the socket buffers, and read as much back."""
    sock.sendall(payload)
    return recv_exactly(sock, len(payload))


def send_then_half_close(sock: socket.socket, payload: bytes) -> None:
    sock.sendall(payload)
    sock.shutdown(socket.SHUT_WR)


def exchange(sock: socket.socket, payload: bytes, *, timeout: float = 30.0) -> bytes:
    """Send payload then half-close, from a thread; meanwhile read until EOF, and return it.

    Sending and reading at once is what keeps a large payload from deadlocking: a
    client that sends everything before reading fills both directions' buffers.
    """

    with ThreadPoolExecutor(max_workers=1) as pool:
        sending = pool.submit(send_then_half_close, sock, payload)
        received = recv_until_eof(sock, timeout=timeout)
        sending.result(timeout=timeout)  # re-raises what went wrong while sending
    return received


def assert_echoed(received: bytes, sent: bytes, *, start: int = 0) -> None:
    """received == sent, with a short message: pytest's own diff of megabytes is unreadable.

    start is where these bytes sit in the whole stream, to report a useful offset.
    """
    if received == sent:
        return
    common = min(len(received), len(sent))
    offset = next((i for i in range(common) if received[i] != sent[i]), common)
    raise AssertionError(
        f"echo differs at byte {start + offset}: expected {len(sent)} bytes here, received {len(received)}; "
        f"expected {sent[offset : offset + 16]!r}..., received {received[offset : offset + 16]!r}..."
    )


def round_trip_times(sock: socket.socket, count: int, *, timeout: float = IO_TIMEOUT) -> list[float]:
    """Seconds each of count lock-step 1-byte echoes took; TimeoutError, saying how far
    it got, if one takes longer than timeout."""
    times = []
    previous_timeout = sock.gettimeout()
    sock.settimeout(timeout)
    try:
        for number in range(count):
            byte = bytes([number % 256])
            started = time.monotonic()
            sock.sendall(byte)
            try:
                assert sock.recv(1) == byte, f"round trip {number}: the echo was not the byte sent"
            except TimeoutError:
                raise TimeoutError(f"round trip {number}: no echo within {timeout}s") from None
            times.append(time.monotonic() - started)
    finally:
        sock.settimeout(previous_timeout)
    return times
