"""Signals that identity changes are waiting to be read: PostgreSQL LISTEN/NOTIFY and Redis pub/sub.

Both only wake the readers (``IdentityChangeWatcher``); what changed is always read from the database.
A lost connection is re-established with a growing pause, logged once per outage, and costs no more than
the readers' poll interval.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import redis.asyncio as redis_asyncio
from sqlalchemy.engine import make_url

from maas_gateway.auth.sql_key_repository import NOTIFY_CHANNEL

__all__ = ["PostgresChangeSignal", "RedisChangeSignal"]

logger = logging.getLogger("maas_gateway.keys")

_REDIS_CHANNEL = "maas:identity-changes"
_MAX_PAUSE = 5.0


class _Reconnecting:
    """Runs ``_session`` again and again until cancelled, pausing longer after each failure."""

    name = "the change signal"

    async def _session(self, wake: Callable[[], None]) -> None:
        raise NotImplementedError

    async def listen(self, wake: Callable[[], None]) -> None:
        pause, failing = 0.1, False
        while True:
            try:
                await self._session(wake)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001  # any failure of the connection: reconnect later
                if not failing:
                    logger.warning("Listening for identity changes on %s failed (%s).", self.name, exc)
                failing = True
            else:
                failing = False
            wake()  # something may have changed while not listening
            await asyncio.sleep(pause)
            pause = min(pause * 2, _MAX_PAUSE)


class PostgresChangeSignal(_Reconnecting):
    """``LISTEN`` on the channel the writing transactions ``NOTIFY`` (so ``send`` has nothing to do)."""

    name = "PostgreSQL"

    def __init__(self, database_url: str) -> None:
        url = make_url(database_url).set(drivername="postgresql")
        self._dsn = url.render_as_string(hide_password=False)

    async def send(self) -> None:
        return None

    async def _session(self, wake: Callable[[], None]) -> None:
        import asyncpg

        connection = await asyncpg.connect(self._dsn, timeout=5)
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _connection: lost.set())
        try:
            await connection.add_listener(NOTIFY_CHANNEL, lambda *_args: wake())
            wake()
            await lost.wait()
        finally:
            await connection.close(timeout=1)

    async def aclose(self) -> None:
        return None


class RedisChangeSignal(_Reconnecting):
    """A Redis channel: published after each committed change, subscribed to by every process."""

    name = "Redis"

    def __init__(self, url: str, timeout: float = 1.0) -> None:
        self._client: Any = redis_asyncio.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        self._listener: Any = redis_asyncio.from_url(url, socket_connect_timeout=timeout)
        self._publish_failing = False

    async def send(self) -> None:
        try:
            await self._client.publish(_REDIS_CHANNEL, b"1")
        except Exception as exc:  # noqa: BLE001  # the readers' poll covers a lost signal
            if not self._publish_failing:
                logger.warning("Signalling an identity change over Redis failed (%s).", exc)
            self._publish_failing = True
        else:
            self._publish_failing = False

    async def _session(self, wake: Callable[[], None]) -> None:
        pubsub = self._listener.pubsub()
        try:
            await pubsub.subscribe(_REDIS_CHANNEL)
            wake()
            async for message in pubsub.listen():
                if message.get("type") == "message":
                    wake()
        finally:
            await pubsub.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()
        await self._listener.aclose()
