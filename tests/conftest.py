"""Fixtures that start real servers on loopback: the simulator, gateways and misbehaving backends."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.configs import demo_dict
from tests.support.processes import ServerProcess, free_port, maas

GatewayFactory = Callable[..., ServerProcess]
_counter = itertools.count()


@pytest.fixture(scope="session")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One simulator (`maas sim`) for the whole session, with zero latency."""
    port = free_port()
    log = tmp_path_factory.mktemp("sim") / "sim.log"
    with ServerProcess(maas("sim", "--port", str(port)), port, log) as server:
        yield server


@pytest.fixture(scope="session")
def fake_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A backend that misbehaves on request: see tests/support/fake_backend.py."""
    port = free_port()
    log = tmp_path_factory.mktemp("fake") / "fake.log"
    script = str(Path(__file__).parent / "support" / "fake_backend.py")
    with ServerProcess([sys.executable, script, str(port)], port, log) as server:
        yield server


def _start_gateway(config: dict[str, Any], directory: Path) -> ServerProcess:
    port = free_port()
    config = {**config, "server": {**config.get("server", {}), "port": port}}
    number = next(_counter)
    path = directory / f"gateway-{number}.yaml"
    path.write_text(yaml.safe_dump(config), "utf-8")
    log = directory / f"gateway-{number}.log"
    return ServerProcess(maas("serve", "--config", str(path)), port, log).start()


@pytest.fixture
def gateway_factory(tmp_path: Path) -> Iterator[GatewayFactory]:
    """Start gateways from configuration dicts; all are stopped when the test ends."""
    started: list[ServerProcess] = []

    def factory(config: dict[str, Any]) -> ServerProcess:
        server = _start_gateway(config, tmp_path)
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def gateway(simulator: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The demo gateway in front of the session simulator, with limits off (core behaviour only)."""
    server = _start_gateway(demo_dict(simulator.url, limits=False), tmp_path_factory.mktemp("gw"))
    yield server
    server.stop()
