"""The SQL database shared by the usage ledger and the API key store: one engine, one schema.

SQLite (``sqlite+aiosqlite://``) is the embedded default and PostgreSQL (``postgresql+asyncpg://``) the
choice at scale. The schema is migrated by Alembic, once per process, on first use; a database that is
down at startup is migrated when it comes back.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

__all__ = ["Database", "metadata"]

metadata = MetaData()


class Database:
    def __init__(self, url: str, *, migrate: bool = True, pool_size: int = 5) -> None:
        self.url = url
        self.is_postgres = url.startswith("postgresql")
        # Plain executemany rather than SQLAlchemy's multi-VALUES rewriting: the drivers' own executemany
        # (sqlite3's in C, asyncpg's pipelined) is several times cheaper per usage record.
        options: dict[str, Any] = {"pool_pre_ping": True, "use_insertmanyvalues": False}
        if self.is_postgres:
            options |= {"pool_size": pool_size, "max_overflow": pool_size}
        else:
            _ensure_sqlite_directory(url)
        self.engine: AsyncEngine = create_async_engine(url, **options)
        self._migrate = migrate
        self._ready = False
        self._lock = asyncio.Lock()

    async def ready(self) -> None:
        """Migrate the schema to the newest revision, once; raises while the database is down."""
        if self._ready:
            return
        async with self._lock:
            if self._ready:
                return
            if self._migrate:
                from maas_gateway.database.migrations import upgrade

                async with self.engine.begin() as connection:
                    await connection.run_sync(upgrade)
            self._ready = True

    async def aclose(self) -> None:
        await self.engine.dispose()


def _ensure_sqlite_directory(url: str) -> None:
    path = url.split("///", 1)[1] if "///" in url else ""
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
