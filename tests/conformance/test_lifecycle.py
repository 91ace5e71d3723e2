"""Lifecycle: the ready line, graceful stop on SIGTERM/SIGINT with a drain, the
immediate exit on a second signal, and the command line's errors and answers."""

from __future__ import annotations

import re
import signal
import socket
import time

import pytest

from common import __version__
from tests.support import (
    StartServer,
    connect,
    connection_refused,
    echo,
    recv_until_eof,
    run_server,
    wait_until,
)

pytestmark = pytest.mark.timeout(30)

STOP_SIGNALS = [signal.SIGTERM, signal.SIGINT]
# How long a stop that should be immediate may take on a loaded machine.
PROMPT = 2.0


def ipv6_loopback_available() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


def test_ready_line_is_the_only_stdout(start_server: StartServer) -> None:
    server = start_server()
    match = re.fullmatch(r"listening on 127\.0\.0\.1:(\d+)", server.ready_line)
    assert match, server.ready_line
    assert 0 < int(match[1]) < 65536
    with connect(server.address) as sock:
        assert echo(sock, b"ready") == b"ready"
    server.send_signal(signal.SIGTERM)
    assert server.wait(PROMPT) == 0
    assert server.stdout_after_ready() == b"", "the ready line must be the only line on stdout"


@pytest.mark.skipif(not ipv6_loopback_available(), reason="no IPv6 loopback")
def test_ipv6_host_is_bracketed(start_server: StartServer) -> None:
    server = start_server("--host", "::1")
    assert re.fullmatch(r"listening on \[::1\]:[1-9]\d*", server.ready_line), server.ready_line
    with connect(server.address) as sock:
        assert sock.family == socket.AF_INET6
        assert echo(sock, b"over IPv6") == b"over IPv6"


@pytest.mark.parametrize("signum", STOP_SIGNALS, ids=lambda signum: signum.name)
def test_stop_signal_with_no_clients_exits_0_promptly(start_server: StartServer, signum: int) -> None:
    server = start_server()
    server.send_signal(signum)
    assert server.wait(PROMPT) == 0, server.stderr_text()


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


def test_port_in_use_is_one_line_error_exit_1(server_command: list[str]) -> None:
    with socket.create_server(("127.0.0.1", 0)) as occupant:
        port = occupant.getsockname()[1]
        result = run_server(server_command, "--port", str(port))
    assert result.returncode == 1, result.stderr
    assert result.stdout == "", "no ready line when the server cannot listen"
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: cannot listen on"), lines[0]


@pytest.mark.parametrize(
    "arguments",
    [
        ["--port", "-1"],
        ["--port", "65536"],
        ["--port", "abc"],
        ["--buffer-size", "0"],
        ["--drain-timeout", "-1"],
        ["--no-such-option"],
    ],
    ids=" ".join,
)
def test_bad_arguments_exit_2_with_usage(server_command: list[str], arguments: list[str]) -> None:
    result = run_server(server_command, *arguments)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert "usage:" in result.stderr
    assert "Traceback" not in result.stderr


def test_version(server_command: list[str]) -> None:
    result = run_server(server_command, "--version")
    assert result.returncode == 0, result.stderr
    assert __version__ in result.stdout


def test_help_lists_every_option(server_command: list[str]) -> None:
    result = run_server(server_command, "--help")
    assert result.returncode == 0, result.stderr
    for option in ("--host", "--port", "--backlog", "--buffer-size", "--drain-timeout", "--log-level"):
        assert option in result.stdout, f"--help does not mention {option}"
