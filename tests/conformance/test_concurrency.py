"""Group 3, concurrency and isolation: many clients at once each get exactly their own
bytes, and no client (idle, not reading, resetting) can hold up the others."""

from __future__ import annotations

import random
import socket
import statistics
import threading
from concurrent.futures import ThreadPoolExecutor
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

from tests.clients import (
    IO_TIMEOUT,
    connect,
    connect_served,
    echo,
    recv_exactly,
    recv_until_eof,
    reset,
    round_trip_times,
)
from tests.conformance.cases import case
from tests.servers import RecordProperty, Server
from tests.stalls import stall_ends_the_test
from tests.streams import PatternStream, payloads, push_until_stalled, read_back_stream
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


INTERACTIVE_ROUND_TRIPS = 100
# Far above a fair server's (a few ms, the bulk client's 64 KiB reads and writes taking
# turns with the 1-byte ones), far below a starved client's: it waits for the bulk
# client to pause, which it never does.
MAX_MEDIAN_UNDER_LOAD = 0.02
STARVED = 1.0  # one round trip this long means the interactive client is not being served
BLOCK = random.Random(35).randbytes(1 << 16)
FLOWING = 1 << 20  # echoed to the streaming client before the round trips start


@case("3.5", "Fairness: a client streaming at full rate does not starve a lock-step one", timeout=60)
def test_streaming_client_does_not_starve_an_interactive_one(
    server: Server, record_property: RecordProperty
) -> None:
    stopping = threading.Event()
    with connect(server.address) as bulk, connect(server.address) as interactive:
        assert echo(bulk, b"bulk") == b"bulk"
        interactive.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def stream() -> int:  # full rate: the next block as soon as the last one is taken
            sent = 0
            while not stopping.is_set():
                bulk.sendall(BLOCK)
                sent += len(BLOCK)
            bulk.shutdown(socket.SHUT_WR)
            return sent

        def read_echo() -> int:
            received = 0
            while chunk := bulk.recv(1 << 16):
                received += len(chunk)
                if received >= FLOWING:
                    flowing.set()
            return received

        flowing = threading.Event()
        with ThreadPoolExecutor(max_workers=2) as pool:
            sending, reading = pool.submit(stream), pool.submit(read_echo)
            try:
                assert flowing.wait(IO_TIMEOUT), f"the streaming client's echo did not flow in {IO_TIMEOUT}s"
                times = round_trip_times(interactive, INTERACTIVE_ROUND_TRIPS, timeout=STARVED)
            finally:
                stopping.set()
            sent, received = sending.result(timeout=IO_TIMEOUT), reading.result(timeout=IO_TIMEOUT)
    median = statistics.median(times)
    record_property(
        "measured",
        f"lock-step round trip beside a {received >> 20} MiB stream: median {median * 1e3:.2f} ms",
    )
    assert received == sent, f"the streaming client got {received} of {sent} bytes back"
    assert median < MAX_MEDIAN_UNDER_LOAD, f"median round trip {median * 1e3:.1f} ms beside a stream"


# --- any order of events, on several clients at once (hypothesis) --------------------

MAX_CLIENTS = 6
# What a client may have sent and not read back yet. Small enough that the server's
# buffers hold it all: a client in this machine never blocks in sendall().
MAX_OWED = 128 << 10
MAX_SEND = 128 << 10  # one send: an edge-sized one, with anything unread, reaches MAX_OWED


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
    owed_reads = 0  # sends that first had to read back MAX_OWED, over all examples

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

    @rule(client=clients, data=payloads(MAX_SEND, min_size=1))
    @stall_ends_the_test()
    def send(self, client: Client, data: bytes) -> None:
        if client.half_closed or client not in self.open:
            return
        if client.owed + len(data) > MAX_OWED:
            ClientsInAnyOrder.owed_reads += 1  # counted for the report: the branch is reached
            self.read_all_owed(client)
        client.sock.sendall(data)
        client.sent += data

    @rule(client=clients, burst=st.lists(payloads(MAX_SEND, min_size=1), min_size=2, max_size=4))
    def send_burst(self, client: Client, burst: list[bytes]) -> None:
        """Several sends with no read between: what reaches MAX_OWED."""
        for data in burst:
            self.send(client, data)

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
def test_clients_in_any_order(server: Server, record_property: RecordProperty) -> None:
    ClientsInAnyOrder.owed_reads = 0
    run_state_machine_as_test(
        # Any factory will do, as hypothesis documents; its annotation says a class.
        lambda: ClientsInAnyOrder(server.address),  # type: ignore[arg-type]
        settings=settings(stateful_step_count=30),
    )
    record_property(
        "measured", f"{ClientsInAnyOrder.owed_reads} sends first read back {MAX_OWED >> 10} KiB owed"
    )
