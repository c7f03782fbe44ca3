"""Backend counter readings in the shared SQL database (table ``backend_token_readings``)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import and_, delete, func, select, tuple_
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from maas_gateway.database import Database
from maas_gateway.metering.readings import BackendReading
from maas_gateway.metering.tables import backend_token_readings

__all__ = ["SqlBackendReadings"]

_COLUMNS = ("backend", "model", "at", "prompt_tokens", "generation_tokens")


class SqlBackendReadings:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def record(self, readings: Sequence[BackendReading]) -> None:
        if not readings:
            return
        await self.database.ready()  # the counters may be read before the ledger's first write migrated
        insert = postgresql_insert if self.database.is_postgres else sqlite_insert
        rows = [{name: getattr(reading, name) for name in _COLUMNS} for reading in readings]
        statement = insert(backend_token_readings).on_conflict_do_nothing()
        async with self.database.engine.begin() as connection:
            await connection.execute(statement, rows)

    async def series(self, since: float, until: float) -> dict[tuple[str, str], list[BackendReading]]:
        await self.database.ready()
        table = backend_token_readings.c
        # The last reading before ``since`` of each series: the period's starting point.
        before = (
            select(table.backend, table.model, func.max(table.at).label("at"))
            .where(table.at < since)
            .group_by(table.backend, table.model)
            .subquery("before")
        )
        statement = (
            select(*(table[name] for name in _COLUMNS))
            .where(
                (and_(table.at >= since, table.at <= until))
                | tuple_(table.backend, table.model, table.at).in_(
                    select(before.c.backend, before.c.model, before.c.at)
                )
            )
            .order_by(table.backend, table.model, table.at)
        )
        async with self.database.engine.connect() as connection:
            rows = (await connection.execute(statement)).all()
        found: dict[tuple[str, str], list[BackendReading]] = {}
        for row in rows:
            found.setdefault((row[0], row[1]), []).append(BackendReading(*row))
        return found

    async def prune(self, before: float, *, limit: int) -> int:
        await self.database.ready()
        table = backend_token_readings.c
        oldest = (
            select(table.backend, table.model, table.at)
            .where(table.at < before)
            .order_by(table.at)
            .limit(limit)
        )
        statement = delete(backend_token_readings).where(
            tuple_(table.backend, table.model, table.at).in_(oldest)
        )
        async with self.database.engine.begin() as connection:
            result = await connection.execute(statement)
        return int(result.rowcount or 0)
