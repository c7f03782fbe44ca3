"""A private redis-server on a free port, for tests that need to stop, slow or restart Redis."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.support.processes import free_port

__all__ = ["STORAGE_KINDS", "RedisServer", "require_binary", "single_node_cluster", "storage_url_of"]


def require_binary(name: str) -> str:
    """The path of ``name``; a missing service fails under CI and is skipped elsewhere."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed; .ci/run installs it (apt-get install redis-server)."
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


class RedisServer:
    def __init__(self, directory: Path, *extra_args: str, password: str | None = None) -> None:
        self.binary = require_binary("redis-server")
        self.extra_args = list(extra_args)
        self.password = password
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--enable-debug-command",
            "yes",
            "--dir",
            str(self.directory),
            *self.extra_args,
            *(["--requirepass", self.password] if self.password else []),
        ]
        log = (self.directory / "redis.log").open("ab")
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        client = redis.Redis(port=self.port, socket_timeout=0.5, password=self.password)
        deadline = time.monotonic() + 10
        try:
            while True:
                try:
                    client.ping()
                    return self
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5, password=self.password)


def single_node_cluster(directory: Path) -> RedisServer:
    """A Redis Cluster of one node that owns every slot: enough for redis-py's cluster client."""
    server = RedisServer(directory, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
    while server.port > 55_000:  # the cluster bus listens on port + 10000, which must exist
        server.port = free_port()
    server.url = f"redis://127.0.0.1:{server.port}/0"
    server.start()
    client = redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=2)
    try:
        client.execute_command("CLUSTER", "ADDSLOTSRANGE", "0", "16383")  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
        deadline = time.monotonic() + 10
        info = "CLUSTER", "INFO"
        while b"cluster_state:ok" not in client.execute_command(*info):  # type: ignore[no-untyped-call]  # same
            assert time.monotonic() < deadline, "the one-node cluster did not become ready"
            time.sleep(0.05)
    finally:
        client.close()
    return server


STORAGE_KINDS = ("memory", "redis", "redis-cluster")


def storage_url_of(kind: str, directory: Path) -> Iterator[str]:
    """For a module-scoped fixture over ``STORAGE_KINDS``: ``""`` for in-memory storage, else the URL of
    a private redis-server (or one-node Redis Cluster) in ``directory``, stopped when the fixture ends."""
    if kind == "memory":
        yield ""
        return
    if kind == "redis":
        server = RedisServer(directory).start()
        url = server.url
    else:
        server = single_node_cluster(directory)
        url = f"redis+cluster://127.0.0.1:{server.port}/0"
    try:
        yield url
    finally:
        server.stop()
