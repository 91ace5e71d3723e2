"""Broken on purpose: parses --backlog, --buffer-size and --log-level, checks them, and
then runs with its own settings: the listen queue, the per-client buffer and the log
level a user asked for change nothing."""

import dataclasses
import logging

from common import Config, parse_config
from common.config import DEFAULT_BACKLOG, DEFAULT_BUFFER_SIZE
from common.declaration import Model
from tests.broken.harness import echo_correctly, run

CAUGHT_BY = ("8.7", "8.8", "8.9")


def own_settings(model: Model, description: str) -> Config:
    config = parse_config(model, description)
    logging.getLogger().setLevel(logging.INFO)  # DEFECT: --log-level ignored
    # DEFECT: --backlog and --buffer-size ignored
    return dataclasses.replace(config, backlog=DEFAULT_BACKLOG, buffer_size=DEFAULT_BUFFER_SIZE)


run(echo_correctly, parse=own_settings)
