"""gevent_io's own failure modes: what a greenlet server gets wrong that a thread per
client cannot.

- Greenlets switch only where a call would block. A client that streams as fast as
  it reads never makes recv() or send() block, so its greenlet would keep the thread,
  and every other client would wait: the conformance suite's clients never stream
  that fast.
- gevent is optional: without it, one line naming the install command, exit 1, and
  the suite's n/a with the same reason.

Each runs against gevent_io, or against the broken server that `--models broken/NAME`
names (tests/test_suite_can_fail.py shows each test failing on one).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time

import pytest

from tests.clients import connect, echo
from tests.servers import RecordProperty, one_server
from toolkit.process import EXIT_TIMEOUT, ServerProcess, ServerSpec
from toolkit.registry import ROOT

STREAM = 2 << 30  # long enough that a greenlet keeping the thread shows (~2 s on loopback)
CHUNK = 1 << 20
PING_INTERVAL = 0.005
# A gross bound, not a timing: a ping waits one or two 64 KiB echoes of the stream
# (a few ms) when the streaming greenlet yields, the whole stream when it does not.
WORST_PING = 0.2


@pytest.fixture
def spec(request: pytest.FixtureRequest) -> ServerSpec:
    return one_server(request.config, "gevent_io")


def stream(sock: socket.socket, total: int) -> None:
    """Send total bytes and read them back, as fast as both ends go."""

    def read() -> None:
        received = 0
        while received < total and (data := sock.recv(CHUNK)):
            received += len(data)

    reader = threading.Thread(target=read)
    reader.start()
    chunk = bytes(CHUNK)
    for _ in range(total // CHUNK):
        sock.sendall(chunk)
    reader.join(timeout=60)


@pytest.mark.timeout(90)
def test_a_fast_stream_does_not_stall_the_others(spec: ServerSpec, record_property: RecordProperty) -> None:
    if spec.unavailable:
        pytest.skip(f"not applicable: {spec.unavailable}")
    with ServerProcess(spec) as server, connect(server.address) as streamer, connect(server.address) as ping:
        streamer.settimeout(60)
        assert echo(ping, b"p") == b"p"
        streaming = threading.Thread(target=stream, args=(streamer, STREAM))
        streaming.start()
        worst, pings, started = 0.0, 0, time.monotonic()
        while streaming.is_alive():
            sent = time.monotonic()
            assert echo(ping, b"p") == b"p"
            worst = max(worst, time.monotonic() - sent)
            pings += 1
            streaming.join(PING_INTERVAL)
        took = time.monotonic() - started
        record_property(
            "measured", f"{STREAM >> 20} MiB streamed in {took:.2f}s; worst ping {worst * 1000:.0f} ms"
        )
        assert worst < WORST_PING, (
            f"a ping waited {worst * 1000:.0f} ms while another client streamed ({pings} pings, {took:.2f}s)"
        )


PROBE = "from toolkit.process import model_spec; print(model_spec('gevent_io').unavailable)"


def without_gevent(*arguments: str) -> subprocess.CompletedProcess[str]:
    """Run this interpreter without its site-packages (-S): the standard library and the
    repository only, as on a machine where gevent was never installed."""
    return subprocess.run(
        [sys.executable, "-S", *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=EXIT_TIMEOUT,
        check=False,
    )


@pytest.mark.timeout(30)
def test_without_gevent_one_line_and_n_a(spec: ServerSpec) -> None:
    assert spec.command is not None
    result = without_gevent(*spec.command[1:3], "--port", "0")  # -m MODULE
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, f"not one line without gevent:\n{result.stderr[-2000:]}"
    [line] = lines
    assert line.startswith("error: ") and "pip install '.[gevent]'" in line, line
    probe = without_gevent("-c", PROBE)
    assert probe.stdout.strip() == "gevent_io needs gevent: it is not installed (pip install '.[gevent]')"
