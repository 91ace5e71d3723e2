"""Broken on purpose: asyncio_io as it was, handing --backlog to create_server(), which
also takes it for the number of accept() calls per wakeup. At --backlog 0 it never
accepts, and spins on the listener; at 65535, out of descriptors, each wakeup makes
65,535 failing accept() calls and schedules as many retries: a core spins."""

import asyncio

import asyncio_io.server as model
from asyncio_io import MODEL
from common import parse_config
from tests.broken.harness import declaration

CAUGHT_BY = ("7.12", "9.1")


def main() -> None:
    config = parse_config(
        declaration("tests.broken.batch_is_backlog", like=MODEL),
        "asyncio_io with its old accept batch",
    )
    model.ACCEPT_BATCH = config.backlog  # type: ignore[attr-defined]  # DEFECT: the queue length as batch
    asyncio.run(model.EchoServer(config).serve())


main()
