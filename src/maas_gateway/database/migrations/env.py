"""Alembic environment: migrations always run on a connection handed over by the gateway."""

from __future__ import annotations

from alembic import context

from maas_gateway.database import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("Run ledger migrations through `maas db upgrade` or the gateway's startup.")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
