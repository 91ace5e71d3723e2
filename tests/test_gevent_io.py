"""gevent_io's own failure modes: what a greenlet server gets wrong that a thread per
client cannot.

- Greenlets switch only where a call would block. A client that streams as fast as
  it reads never makes recv() or send() block, so its greenlet would keep the thread,
  and every other client would wait: the conformance suite's clients never stream
  that fast.
- gevent is optional: without it, one line naming the install command, exit 1, and
  the suite's n/a with the same reason.

Each check runs against gevent_io, and against the broken server made for it
(tests/broken/: greenlet_never_yields, imports_gevent_first), where it must fail.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import socket
import struct
import subprocess
import sys
import termios
from collections.abc import Callable
from types import ModuleType

import pytest

from common import READ_SIZE, Config
from tests.servers import spec_for
from toolkit.process import EXIT_TIMEOUT, ServerSpec
from toolkit.registry import ROOT

CONFIG = Config(
    host="127.0.0.1",
    port=0,
    backlog=1,
    buffer_size=READ_SIZE,
    drain_timeout=1.0,
    max_connections=10,
    idle_timeout=0.0,
    log_level="INFO",
)


def server_module(spec: ServerSpec) -> ModuleType:
    """The module holding the EchoServer that spec runs: gevent_io.server, or a broken one."""
    assert spec.command is not None
    module = spec.command[2]  # python -m MODULE
    return importlib.import_module(module if module.startswith("tests.") else f"{module}.server")


def queued(sock: socket.socket) -> int:
    """Bytes waiting in sock's receive queue (FIONREAD)."""
    answer: int = struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0" * 4))[0]
    return answer


def a_streaming_client_does_not_keep_the_thread(spec: ServerSpec) -> None:
    """A client's greenlet, with more input waiting than one recv() takes and room for all
    its echo, must still let another greenlet run before it has echoed everything.

    In process, on a socketpair, because the order of events says it exactly where a
    clock cannot: from outside, on a loaded machine, any ping may wait for a core.
    (Measured from outside, a ping beside a 2 GiB stream: docs/gevent_io.md.)"""
    import gevent  # type: ignore[import-untyped]  # noqa: PLC0415 -- only where gevent is installed
    import gevent.socket  # type: ignore[import-untyped]  # noqa: PLC0415

    model = server_module(spec)
    client, server_side = socket.socketpair()
    with client:
        for sock in (client, server_side):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)  # the kernel caps it
        client.setblocking(False)
        sent = 0
        with contextlib.suppress(BlockingIOError):  # fill what the socketpair holds
            while sent < 8 * READ_SIZE:
                sent += client.send(bytes(READ_SIZE))
        assert sent >= 2 * READ_SIZE, f"the socketpair holds only {sent} bytes: no test"
        server = model.EchoServer(CONFIG)
        sock = gevent.socket.socket(fileno=server_side.detach())
        client_class = importlib.import_module("gevent_io.server").Client  # broken ones share it
        server.clients[sock] = streaming = client_class(sock, ("socketpair", 0))
        serving = gevent.spawn(server.serve_client, streaming)
        echoed_before_others_ran = gevent.spawn(queued, client)  # runs once serving yields
        assert echoed_before_others_ran.get(timeout=5) < sent, (
            f"the streaming client's greenlet echoed all {sent} bytes before any other ran"
        )
        client.shutdown(socket.SHUT_WR)
    serving.join(timeout=5)


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


def without_gevent_one_line_and_n_a(spec: ServerSpec) -> None:
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


Check = Callable[[ServerSpec], None]
CHECKS: dict[str, tuple[Check, str]] = {  # name: (check, its broken server)
    "streaming client yields": (a_streaming_client_does_not_keep_the_thread, "greenlet_never_yields"),
    "without gevent": (without_gevent_one_line_and_n_a, "imports_gevent_first"),
}


def unless_gevent_is_missing(name: str) -> None:
    """The in-process check needs gevent here; the one without it never does."""
    if name != "without gevent" and (missing := spec_for("gevent_io").unavailable):
        pytest.skip(f"not applicable: {missing}")


@pytest.mark.timeout(30)
@pytest.mark.parametrize("name", list(CHECKS))
def test_gevent_io(name: str) -> None:
    unless_gevent_is_missing(name)
    check, _ = CHECKS[name]
    check(spec_for("gevent_io"))


@pytest.mark.timeout(30)
@pytest.mark.parametrize("name", list(CHECKS))
def test_fails_on_its_broken_server(name: str) -> None:
    unless_gevent_is_missing(name)
    check, broken = CHECKS[name]
    with pytest.raises(AssertionError) as failure:
        check(spec_for(f"broken/{broken}"))
    print(f"broken/{broken}: {name}: {failure.value!r}"[:300])
