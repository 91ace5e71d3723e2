"""Group 6, resource hygiene: whatever way its clients leave (a clean close, a reset,
many at once), the server gives back their descriptors and threads. A leak of one
socket per client looks harmless in a demo and ends a real server at its fd limit."""

from __future__ import annotations

from contextlib import ExitStack

from tests.clients import connect, connect_served, echo, reset
from tests.conformance.cases import case
from tests.servers import assert_back_to, quiet_baseline
from toolkit.measure import server_fds, server_threads
from toolkit.process import ServerProcess

CYCLES = 2000
RESETS = 500
WAVES, WAVE_SIZE = 10, 50


@case("6.1", f"After {CYCLES} connect/echo/close cycles, open descriptors are back at baseline", timeout=120)
def test_descriptors_after_many_cycles(server_process: ServerProcess) -> None:
    baseline = quiet_baseline(server_process, server_fds)
    for number in range(CYCLES):
        with connect(server_process.address) as sock:
            message = f"cycle {number}".encode()
            assert echo(sock, message) == message
    assert_back_to(server_process, server_fds, baseline, "descriptors")


@case("6.2", f"After {RESETS} clients reset mid-echo, open descriptors are back at baseline", timeout=120)
def test_descriptors_after_resets(server_process: ServerProcess) -> None:
    baseline = quiet_baseline(server_process, server_fds)
    for _ in range(RESETS):
        with connect(server_process.address) as sock:
            sock.sendall(bytes(16 << 10))
            reset(sock)  # while the server is reading that, or echoing it
    assert_back_to(server_process, server_fds, baseline, "descriptors")


@case(
    "6.3",
    f"After {WAVES} waves of {WAVE_SIZE} clients at once, threads and descriptors are back",
    timeout=120,
)
def test_threads_after_waves_of_clients(server_process: ServerProcess) -> None:
    fds_baseline = quiet_baseline(server_process, server_fds)
    threads_baseline = server_threads(server_process.pid)
    for wave in range(WAVES):
        with ExitStack() as stack:
            clients = [
                stack.enter_context(connect_served(server_process.address, number))
                for number in range(WAVE_SIZE)
            ]
            for index, sock in enumerate(clients):
                message = f"wave {wave} client {index}".encode()
                assert echo(sock, message) == message
    assert_back_to(server_process, server_threads, threads_baseline, "threads")
    assert_back_to(server_process, server_fds, fds_baseline, "descriptors")
