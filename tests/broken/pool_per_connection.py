"""Broken on purpose: the thread pool server tutorials write. Each accepted client is a
job for a ThreadPoolExecutor of --workers threads, and the job serves it from start to
finish. So N clients that stay connected (idle, or slow) hold all N threads, and client
N+1 is accepted but waits unserved, its bytes unread, until one of them leaves."""

import socket
from concurrent.futures import ThreadPoolExecutor

from common import Config, parse_config
from common.declaration import Model
from tests.broken.harness import echo_correctly, run
from threadpool import DEFAULT_WORKERS

CAUGHT_BY = ("3.1",)  # a pool thread per client, start to finish: idle clients stop the rest

pools: list[ThreadPoolExecutor] = []


def parse(model: Model, description: str) -> Config:
    config = parse_config(model, description, workers=DEFAULT_WORKERS)
    pools.append(ThreadPoolExecutor(config.workers))  # --workers threads: the bound is the point
    return config


def serve_client(sock: socket.socket, buffer_size: int) -> None:
    pools[0].submit(echo_correctly, sock, buffer_size)  # DEFECT: one pool thread per client, start to finish


run(serve_client, threads=False, parse=parse)  # the accepting thread only queues the client for the pool
