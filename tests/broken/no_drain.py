"""Broken on purpose: on a stop signal it exits at once, cutting every transfer in the
middle; --drain-timeout is parsed, and never given."""

import dataclasses

from common import Config, parse_config
from common.declaration import Model
from tests.broken.harness import echo_correctly, run

CAUGHT_BY = ("7.4", "9.8")


def no_drain(model: Model, description: str) -> Config:
    config = parse_config(model, description)
    return dataclasses.replace(config, drain_timeout=0.0)  # DEFECT: open clients get no time to finish


run(echo_correctly, parse=no_drain)
