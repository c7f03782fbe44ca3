"""Alembic migrations of the ledger, run programmatically on a connection the gateway already holds.

``upgrade(connection)`` brings the schema to the newest revision. On PostgreSQL it first takes an
advisory lock so that replicas starting together migrate one at a time.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text

__all__ = ["alembic_config", "upgrade"]

_ADVISORY_LOCK = 7_346_221_001  # any constant; shared by every replica of the gateway


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK})
    command.upgrade(alembic_config(connection), "head")
