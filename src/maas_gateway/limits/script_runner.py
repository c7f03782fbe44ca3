"""Where Lua scripts run: one multiplexed connection to a standalone Redis, or redis-py's cluster client.

Every Redis-backed storage of the gateway (limit counters, capacity leases) runs its scripts through a
``ScriptRunner`` from ``script_runner``, so each speaks to Redis the same way and under the same timeout.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from redis.asyncio.cluster import RedisCluster

from maas_gateway.limits.redis_connection import RedisConnection

__all__ = ["ClusterRunner", "ScriptRunner", "script_runner"]


class ScriptRunner(Protocol):
    async def script(self, source: str, keys: Sequence[str], args: Sequence[int | str]) -> Any: ...

    async def ping(self) -> bool: ...

    async def aclose(self) -> None: ...


class ClusterRunner:
    """Scripts through redis-py's cluster client, which sends each to the node owning the keys' slot."""

    def __init__(self, url: str, timeout: float) -> None:
        self._client = RedisCluster.from_url(
            "redis://" + url.removeprefix("redis+cluster://"),
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            decode_responses=False,
        )
        self._scripts: dict[str, Any] = {}

    async def script(self, source: str, keys: Sequence[str], args: Sequence[int | str]) -> Any:
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts[source] = self._client.register_script(source)
        return await script(keys=list(keys), args=list(args))

    async def ping(self) -> bool:
        return bool(await self._client.ping())

    async def aclose(self) -> None:
        await self._client.aclose()


def script_runner(url: str, timeout: float) -> ScriptRunner:
    """The runner for ``url``: ``redis+cluster://`` through the cluster client, anything else over one
    multiplexed connection (``redis_connection.py``). Every operation ends within ``timeout``."""
    if url.startswith("redis+cluster://"):
        return ClusterRunner(url, timeout)
    return RedisConnection(url, timeout=timeout)
