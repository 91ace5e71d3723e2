"""Who runs in the benchmark: our models (the registry's), and the peers we hold them to.

Each peer is written the minimal way its library documents (bench/peers/), so a ratio
says what a model costs against what a reader would otherwise write. A peer whose
library is not installed is skipped with a note; `pip install -e '.[bench]'` has them all.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from bench.loadgen import build
from toolkit import registry
from toolkit.process import PORT, ServerSpec, model_spec

PEERS_DIRECTORY = Path(__file__).with_name("peers")
INSTALL_HINT = "pip install -e '.[bench]'"

# The six models hold as many connections as a scenario opens; select_mux still turns
# away descriptors >= 1024, as it must.
MODEL_ARGS = ("--max-connections", "20000")


@dataclass(frozen=True)
class Contender:
    name: str
    kind: str  # "model" (ours) or "peer"
    spec: ServerSpec
    needs: str | None = None  # a module the peer imports, from an optional extra

    def skipped(self) -> str | None:
        """Why it cannot run here, or None."""
        if self.spec.unavailable:
            return self.spec.unavailable
        if self.needs and importlib.util.find_spec(self.needs) is None:
            return f"{self.needs} is not installed ({INSTALL_HINT})"
        return None

    def argv_shown(self) -> str:
        return self.spec.shown_command() or self.name


def python_peer(name: str, module: str, *args: str, needs: str | None = None) -> Contender:
    command = (sys.executable, "-m", f"bench.peers.{module}", PORT, *args)
    return Contender(name, "peer", ServerSpec(name, command), needs)


def contenders() -> list[Contender]:
    models = []
    for model in registry.names():
        spec = model_spec(model)
        assert spec.command is not None
        models.append(Contender(model, "model", replace(spec, command=(*spec.command, *MODEL_ARGS))))
    # prefork's scaling: its default (a worker per CPU) against a single worker.
    prefork = model_spec("prefork")
    assert prefork.command is not None
    one_worker = (*prefork.command, *MODEL_ARGS, "--workers", "1")
    models.append(
        Contender("prefork 1 worker", "model", replace(prefork, name="prefork 1 worker", command=one_worker))
    )
    socketserver = (sys.executable, "tests/third_party/socketserver_echo.py", PORT)
    forking_socketserver = (sys.executable, "tests/third_party/socketserver_forking_echo.py", PORT)
    return [
        *models,
        Contender("socketserver threads", "peer", ServerSpec("socketserver threads", socketserver)),
        Contender("socketserver forking", "peer", ServerSpec("socketserver forking", forking_socketserver)),
        python_peer("asyncio Protocol", "asyncio_protocol"),
        python_peer("asyncio streams", "asyncio_streams"),
        python_peer("uvloop Protocol", "asyncio_protocol", "uvloop", needs="uvloop"),
        python_peer("uvloop streams", "asyncio_streams", "uvloop", needs="uvloop"),
        python_peer("gevent StreamServer", "gevent_server", needs="gevent"),
        c_floor(),
    ]


def c_floor() -> Contender:
    """A minimal epoll echo server in C: what the same loop costs without Python."""
    binary = build(PEERS_DIRECTORY / "c_epoll_echo.c")
    return Contender("C epoll (floor)", "peer", ServerSpec("C epoll (floor)", (str(binary), PORT)))
