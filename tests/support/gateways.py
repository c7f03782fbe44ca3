"""Starting gateways (`maas serve`) from configuration dicts, each on free API and metrics ports."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from tests.support.processes import GatewayProcess, free_port, maas

__all__ = ["GatewayFactory", "gateway_config_file", "start_gateway"]

GatewayFactory = Callable[..., GatewayProcess]
_counter = itertools.count()


def gateway_config_file(config: dict[str, Any], directory: Path) -> tuple[Path, int, int]:
    """Write ``config`` with free ports for the API and the metrics listener; return the file and ports.

    Every gateway gets its own metrics port, so gateways started side by side never clash on the default.
    """
    port, metrics_port = free_port(), free_port()
    config = {
        **config,
        "server": {**config.get("server", {}), "port": port},
        "metrics": {**config.get("metrics", {}), "listen": f"127.0.0.1:{metrics_port}"},
    }
    path = directory / f"gateway-{next(_counter)}.yaml"
    path.write_text(yaml.safe_dump(config), "utf-8")
    return path, port, metrics_port


def start_gateway(
    config: dict[str, Any], directory: Path, *options: str, env: dict[str, str] | None = None
) -> GatewayProcess:
    path, port, metrics_port = gateway_config_file(config, directory)
    log = path.with_suffix(".log")
    command = maas("serve", "--config", str(path), *options)
    return GatewayProcess(command, port, metrics_port, log, env=env).start()
