"""Group 3, concurrency and isolation: many clients at once each get exactly their own
bytes, and no client (idle, not reading, resetting) can hold up the others."""

from __future__ import annotations

import random
import socket
from contextlib import ExitStack
from dataclasses import dataclass, field

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    rule,
    run_state_machine_as_test,
)

from tests.clients import IO_TIMEOUT, connect, connect_served, echo, recv_exactly, recv_until_eof, reset
from tests.conformance.cases import case
from tests.servers import Server
from tests.stalls import stall_ends_the_test
from tests.streams import PatternStream, push_until_stalled, read_back_stream
from toolkit.process import Address

CLIENTS = 120
ROUNDS = 10


@case("3.1", f"{CLIENTS} interleaved clients each get exactly their own bytes", timeout=90)
def test_interleaved_clients_each_get_their_own_bytes(server: Server) -> None:
    generator = random.Random(31)
    with ExitStack() as stack:
        clients = [stack.enter_context(connect_served(server.address, number)) for number in range(CLIENTS)]
        for round_number in range(ROUNDS):
            # Each chunk names its client and round, so a byte delivered to the wrong
            # client, or in the wrong order, cannot match.
            chunks = [
                f"client {index} round {round_number}:".encode()
                + generator.randbytes(generator.randint(1, 40))
                for index in range(CLIENTS)
            ]
            # Round robin: every client's chunk is in flight before any echo is read.
            for sock, chunk in zip(clients, chunks, strict=True):
                sock.sendall(chunk)
            for index, (sock, chunk) in enumerate(zip(clients, chunks, strict=True)):
                assert recv_exactly(sock, len(chunk)) == chunk, f"client {index}, round {round_number}"


@case("3.2", "An idle client does not delay others, and is served when it speaks", timeout=30)
def test_idle_client_does_not_stall_others(server: Server) -> None:
    with connect(server.address) as idle:
        # Connected and silent: a server that serves one client at a time waits on it
        # in recv(), and the next client waits in the listen backlog.
        with connect(server.address) as other:
            try:
                assert echo(other, b"not kept waiting") == b"not kept waiting"
            except TimeoutError:
                raise AssertionError(f"no echo within {IO_TIMEOUT}s while another client sat idle") from None
        assert echo(idle, b"now speaking") == b"now speaking"


@case("3.3", "A client that never reads does not stall others, and gets all it sent", timeout=60)
def test_client_that_never_reads_does_not_stall_others(server: Server) -> None:
    stream = PatternStream(seed=4)
    with connect(server.address, rcvbuf=4096) as hog:
        assert echo(hog, b"served") == b"served"
        pushed = push_until_stalled(hog, stream, limit=64 << 20, stall=0.3)
        # The hog is now blocked: the server owes it all it may and has stopped reading it.
        with connect(server.address) as other:
            for number in range(10):
                message = f"still served {number}".encode()
                try:
                    assert echo(other, message) == message
                except TimeoutError:
                    raise AssertionError(
                        f"no echo within {IO_TIMEOUT}s while a client was not reading"
                    ) from None
        # Then the hog reads: it gets every byte it pushed, in order.
        hog.shutdown(socket.SHUT_WR)
        read_back_stream(hog, stream, pushed)


# --- any order of events, on several clients at once (hypothesis) --------------------

MAX_CLIENTS = 6
# What a client may have sent and not read back yet. Small enough that the server's
# buffers hold it all: a client in this machine never blocks in sendall().
MAX_OWED = 256 << 10


@dataclass
class Client:
    sock: socket.socket
    sent: bytearray = field(default_factory=bytearray)
    received: bytearray = field(default_factory=bytearray)
    half_closed: bool = False

    @property
    def owed(self) -> int:
        return len(self.sent) - len(self.received)


class ClientsInAnyOrder(RuleBasedStateMachine):
    """Several clients connect, send, read, half-close, reset and close in any order.
    Always, each one has received a prefix of what it sent; after its half-close and
    the server's EOF, exactly what it sent."""

    clients = Bundle("clients")

    def __init__(self, address: Address) -> None:
        super().__init__()
        self.address = address
        self.open: list[Client] = []

    @rule(target=clients)
    @stall_ends_the_test()
    def connect(self) -> Client:
        if len(self.open) >= MAX_CLIENTS:  # a no-op, not assume(): discarding steps wastes examples
            return self.open[0]
        client = Client(connect(self.address))
        self.open.append(client)
        return client

    @rule(client=clients, data=st.binary(min_size=1, max_size=16 << 10))
    @stall_ends_the_test()
    def send(self, client: Client, data: bytes) -> None:
        if client.half_closed or client not in self.open:
            return
        if client.owed + len(data) > MAX_OWED:
            self.read_all_owed(client)
        client.sock.sendall(data)
        client.sent += data

    @rule(client=clients)
    @stall_ends_the_test()
    def read(self, client: Client) -> None:
        if client.owed and client in self.open:
            chunk = client.sock.recv(client.owed)
            assert chunk, f"EOF with {client.owed} bytes owed, before the client half-closed"
            client.received += chunk

    @rule(client=clients)
    def half_close(self, client: Client) -> None:
        if not client.half_closed and client in self.open:
            client.sock.shutdown(socket.SHUT_WR)
            client.half_closed = True

    @rule(client=consumes(clients))
    @stall_ends_the_test()
    def finish(self, client: Client) -> None:
        if client in self.open:
            self.half_close(client)
            client.received += recv_until_eof(client.sock)
            assert client.received == client.sent, (
                f"sent {len(client.sent)} bytes, got {len(client.received)}"
            )
            self.open.remove(client)

    @rule(client=consumes(clients))
    def reset(self, client: Client) -> None:
        if client in self.open:
            reset(client.sock)
            self.open.remove(client)

    @rule(client=consumes(clients))
    def close(self, client: Client) -> None:
        if client in self.open:
            client.sock.close()  # with unread echo this, too, is a reset
            self.open.remove(client)

    @invariant()
    def each_received_a_prefix_of_what_it_sent(self) -> None:
        for client in self.open:
            assert client.sent.startswith(client.received), (
                "received bytes that were not sent, or out of order"
            )

    def read_all_owed(self, client: Client) -> None:
        client.received += recv_exactly(client.sock, client.owed)

    def teardown(self) -> None:
        for client in self.open:
            client.sock.close()


@case("3.4", "Clients connecting, sending, reading, half-closing and resetting in any order", timeout=180)
def test_clients_in_any_order(server: Server) -> None:
    run_state_machine_as_test(
        # Any factory will do, as hypothesis documents; its annotation says a class.
        lambda: ClientsInAnyOrder(server.address),  # type: ignore[arg-type]
        settings=settings(stateful_step_count=30),
    )
