"""Fixtures that start real servers on loopback: the simulator, gateways and misbehaving backends."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.configs import demo_dict
from tests.support.gateways import GatewayFactory, start_gateway
from tests.support.processes import GatewayProcess, ServerProcess, free_port, maas


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


@pytest.fixture
def gateway_factory(tmp_path: Path) -> Iterator[GatewayFactory]:
    """Start gateways from configuration dicts (and `maas serve` options such as --workers, and extra
    environment variables); all are stopped when the test ends."""
    started: list[GatewayProcess] = []

    def factory(config: dict[str, Any], *options: str, env: dict[str, str] | None = None) -> GatewayProcess:
        server = start_gateway(config, tmp_path, *options, env=env)
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def gateway(simulator: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """The demo gateway in front of the session simulator, with limits off (core behaviour only)."""
    server = start_gateway(demo_dict(simulator.url, limits=False), tmp_path_factory.mktemp("gw"))
    yield server
    server.stop()
