"""Broken on purpose: on a stop signal it waits for every client to finish, however
long that takes, so one client that never reads keeps the server from ever exiting."""

import dataclasses

from common import Config, parse_config
from common.declaration import Model
from tests.broken.harness import echo_correctly, run

CAUGHT_BY = ("8.3",)


def no_drain_deadline(model: Model, description: str) -> Config:
    config = parse_config(model, description)
    return dataclasses.replace(config, drain_timeout=float("inf"))  # DEFECT: --drain-timeout ignored


run(echo_correctly, parse=no_drain_deadline)
