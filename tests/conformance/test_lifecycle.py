"""Group 7, lifecycle: io-models' command-line contract. The ready line, a graceful
stop on SIGTERM/SIGINT with a bounded drain, the immediate exit on a second signal, and
the command line's errors and answers. It applies to our models and to any server that
declares it follows the contract (--lifecycle)."""

from __future__ import annotations

import re
import signal
import socket
import time

import pytest

from common import __version__
from tests.clients import connect, connection_refused, echo, recv_until_eof
from tests.conformance.cases import case
from tests.servers import StartServer, ipv6_loopback_available
from toolkit.measure import cpu_share
from toolkit.process import ServerSpec, run_server, wait_until

STOP_SIGNALS = [signal.SIGTERM, signal.SIGINT]
# How long a stop that should be immediate may take on a loaded machine.
PROMPT = 2.0


@case("7.1", "The ready line, with the port it listens on, is the only line on stdout", timeout=30)
def test_ready_line_is_the_only_stdout(start_server: StartServer) -> None:
    server = start_server()  # on port 0: the ready line is the only way to learn the port
    assert server.ready_line is not None
    match = re.fullmatch(r"listening on 127\.0\.0\.1:(\d+)", server.ready_line)
    assert match, server.ready_line
    assert 0 < int(match[1]) < 65536
    with connect(server.address) as sock:
        assert echo(sock, b"ready") == b"ready"
    server.send_signal(signal.SIGTERM)
    assert server.wait(PROMPT) == 0
    assert server.stdout_text() == server.ready_line + "\n", "the ready line must be the only line on stdout"


@case("7.2", "With an IPv6 host, the ready line brackets the address", timeout=30)
@pytest.mark.skipif(not ipv6_loopback_available(), reason="no IPv6 loopback")
def test_ipv6_host_is_bracketed(start_server: StartServer) -> None:
    server = start_server("--host", "::1")
    assert server.ready_line is not None
    assert re.fullmatch(r"listening on \[::1\]:[1-9]\d*", server.ready_line), server.ready_line
    with connect(server.address) as sock:
        assert sock.family == socket.AF_INET6
        assert echo(sock, b"over IPv6") == b"over IPv6"


@case("7.3", "SIGTERM or SIGINT with no clients: exit 0 at once", timeout=30)
@pytest.mark.parametrize("signum", STOP_SIGNALS, ids=lambda signum: signum.name)
def test_stop_signal_with_no_clients_exits_0_promptly(start_server: StartServer, signum: int) -> None:
    server = start_server()
    server.send_signal(signum)
    assert server.wait(PROMPT) == 0, server.stderr_text()


@case(
    "7.4",
    "After SIGTERM, open clients are still served, new ones refused; exit 0 when they leave",
    timeout=30,
)
def test_after_sigterm_open_client_is_served_and_new_ones_refused(start_server: StartServer) -> None:
    # A long drain: the exit must come from the client's close, not the deadline.
    server = start_server("--drain-timeout", "60")
    with connect(server.address) as sock:
        assert echo(sock, b"before") == b"before"
        server.send_signal(signal.SIGTERM)
        assert wait_until(lambda: connection_refused(server.address), timeout=PROMPT), "listener still open"
        assert echo(sock, b"during the drain") == b"during the drain"
        sock.shutdown(socket.SHUT_WR)
        assert recv_until_eof(sock) == b""
        assert server.wait(PROMPT) == 0, server.stderr_text()


@case("7.5", "At the drain timeout, remaining clients get a FIN and the server exits 0", timeout=30)
def test_drain_timeout_closes_idle_client_and_exits_0(start_server: StartServer) -> None:
    server = start_server("--drain-timeout", "1")
    with connect(server.address) as sock:
        assert echo(sock, b"idle from now on") == b"idle from now on"
        started = time.monotonic()
        server.send_signal(signal.SIGTERM)
        assert server.wait(1 + PROMPT) == 0, server.stderr_text()
        waited = time.monotonic() - started
        # Not before the deadline: the idle client was owed its drain time.
        assert waited > 0.9, f"exited after {waited:.2f}s, before the 1s drain timeout"
        assert recv_until_eof(sock, timeout=PROMPT) == b"", "the server closes the idle client with a FIN"


@case("7.6", "A second stop signal during the drain exits at once, with 128 + the signal", timeout=30)
@pytest.mark.parametrize("signum", STOP_SIGNALS, ids=lambda signum: signum.name)
def test_second_signal_during_drain_exits_at_once(start_server: StartServer, signum: int) -> None:
    server = start_server("--drain-timeout", "60")
    with connect(server.address) as sock:
        assert echo(sock, b"keeps the drain going") == b"keeps the drain going"
        server.send_signal(signum)
        # The refused connection shows the first signal was handled before the second is sent.
        assert wait_until(lambda: connection_refused(server.address), timeout=PROMPT), "listener still open"
        server.send_signal(signum)
        assert server.wait(PROMPT) == 128 + signum


@case("7.7", "A port in use, or a host that is no address: exit 1 with a one-line error", timeout=30)
@pytest.mark.parametrize("host", [None, "a..b", "no-such-host.invalid"], ids=str)
def test_cannot_listen_is_one_line_error_exit_1(server_spec: ServerSpec, host: str | None) -> None:
    with socket.create_server(("127.0.0.1", 0)) as occupant:
        if host is None:  # the port is taken
            result = run_server(server_spec, occupant.getsockname()[1])
        else:  # an empty label (the idna codec raises UnicodeError), or a name nobody resolves
            result = run_server(server_spec, 0, "--host", host)
    assert result.returncode == 1, result.stderr
    assert result.stdout == "", "no ready line when the server cannot listen"
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: cannot listen on"), lines[0]


@case("7.8", "Bad arguments: exit 2 with usage, no traceback", timeout=30)
@pytest.mark.parametrize(
    "arguments",
    [
        ["--port", "-1"],
        ["--port", "65536"],
        ["--port", "abc"],
        ["--buffer-size", "0"],
        ["--drain-timeout", "-1"],
        ["--max-connections", "0"],
        ["--idle-timeout", "-1"],
        ["--idle-timeout", "soon"],
        ["--backlog", "-1"],
        ["--backlog", "65536"],
        ["--log-level", "LOUD"],
        ["--no-such-option"],
    ],
    ids=" ".join,
)
def test_bad_arguments_exit_2_with_usage(server_spec: ServerSpec, arguments: list[str]) -> None:
    result = run_server(server_spec, 0, *arguments)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert "usage:" in result.stderr
    assert "Traceback" not in result.stderr


@case("7.9", "--version prints the version and exits 0", timeout=30)
def test_version(server_spec: ServerSpec) -> None:
    result = run_server(server_spec, 0, "--version")
    assert result.returncode == 0, result.stderr
    assert __version__ in result.stdout


@case("7.10", "--help lists every option and exits 0", timeout=30)
def test_help_lists_every_option(server_spec: ServerSpec) -> None:
    result = run_server(server_spec, 0, "--help")
    assert result.returncode == 0, result.stderr
    options = (
        "--host",
        "--port",
        "--backlog",
        "--buffer-size",
        "--drain-timeout",
        "--max-connections",
        "--log-level",
    )
    for option in options:
        assert option in result.stdout, f"--help does not mention {option}"


@case("7.11", "With --host ::, clients over IPv4 and over IPv6 are both served (dual stack)", timeout=30)
@pytest.mark.skipif(not ipv6_loopback_available(), reason="no IPv6 loopback")
def test_any_ipv6_host_is_dual_stack(start_server: StartServer) -> None:
    # "::" is "all interfaces", as 0.0.0.0 is: IPv4 clients too, unless IPV6_V6ONLY is set.
    server = start_server("--host", "::")
    port = server.address[1]
    for host in ("::1", "127.0.0.1"):
        try:
            sock = connect((host, port))
        except ConnectionRefusedError:
            pytest.fail(f"--host :: refused a client over {host}: IPv6 only (IPV6_V6ONLY)?")
        with sock:
            assert echo(sock, f"over {host}".encode()) == f"over {host}".encode()


BACKLOG_ZERO_CLIENTS = 5
CPU_WINDOW = 1.0
MAX_CPU_SHARE = 0.2  # of one core; a loop that wakes for a listener it never accepts from uses all


@case("7.12", "--backlog 0 still accepts, serves, and does not spin", timeout=30)
def test_backlog_zero_still_accepts(start_server: StartServer) -> None:
    # listen(0) still queues a connection (Linux: one); the number is no accept batch size.
    server = start_server("--backlog", "0")
    clients = []
    try:
        for number in range(BACKLOG_ZERO_CLIENTS):
            clients.append(connect(server.address))
            message = f"client {number}".encode()
            try:
                assert echo(clients[-1], message) == message
            except TimeoutError:
                pytest.fail(f"with --backlog 0, client {number} was never served")
        share = cpu_share(server.pid, CPU_WINDOW)
        assert share < MAX_CPU_SHARE, f"idle with --backlog 0, the server used {share:.0%} of a core"
    finally:
        for sock in clients:
            sock.close()
