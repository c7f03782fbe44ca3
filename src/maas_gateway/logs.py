"""Logging for every process of the gateway: plain lines on standard error, uvicorn's start-up lines once.

A module of its own so that the parts started by uvicorn (``application.factory``) configure logging without
importing the server module.
"""

from __future__ import annotations

import logging
import logging.config
from typing import Any

__all__ = ["LOGGING", "OncePerProcess", "configure_logging"]


class OncePerProcess(logging.Filter):
    """Lets uvicorn's start-up lines through once per process, though every server of it says them.

    ``maas up`` runs the gateway, the metrics listener and the simulator in one process; each of uvicorn's
    servers logs "Started server process", "Application startup complete." and their shutdown
    counterparts, which said three times read like three starts.
    """

    _REPEATED = (
        "Started server process",
        "Waiting for application startup",
        "Application startup complete",
        "Shutting down",
        "Waiting for application shutdown",
        "Application shutdown complete",
        "Finished server process",
    )

    def __init__(self) -> None:
        super().__init__()
        self._seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        if not message.startswith(self._REPEATED):
            return True
        if message in self._seen:
            return False
        self._seen.add(message)
        return True


LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    },
    "filters": {"once": {"()": OncePerProcess}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "stream": "ext://sys.stderr",
        },
        "uvicorn": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "stream": "ext://sys.stderr",
            "filters": ["once"],
        },
    },
    "loggers": {
        "maas_gateway": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        "uvicorn": {"handlers": ["uvicorn"], "level": "INFO", "propagate": False},
        "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
    },
}


def configure_logging(level: str = "INFO") -> None:
    config = {**LOGGING, "loggers": {k: {**v} for k, v in LOGGING["loggers"].items()}}
    for name in ("maas_gateway", "uvicorn"):
        config["loggers"][name]["level"] = level.upper()
    logging.config.dictConfig(config)
