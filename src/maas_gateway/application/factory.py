"""Building the gateway inside each worker process of `maas serve --workers N`.

uvicorn starts workers from an import string, so the configuration path travels in the environment.
SIGHUP to the supervisor is passed on to each worker, which re-reads the file in place (workers.py).
"""

from __future__ import annotations

import os
from pathlib import Path

from maas_gateway.application.root import Application
from maas_gateway.config import load_config
from maas_gateway.logs import configure_logging
from maas_gateway.proxy.app import GatewayApp

__all__ = ["CONFIG_ENV", "LOG_LEVEL_ENV", "app_from_environment"]

CONFIG_ENV = "MAAS_GATEWAY_CONFIG"
LOG_LEVEL_ENV = "MAAS_GATEWAY_LOG_LEVEL"


def app_from_environment() -> GatewayApp:
    path = Path(os.environ[CONFIG_ENV])
    configure_logging(os.environ.get(LOG_LEVEL_ENV, "info"))
    return Application(load_config(path), path).asgi
