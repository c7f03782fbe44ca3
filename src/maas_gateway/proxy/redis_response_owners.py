"""Stored responses' owners in Redis, so every gateway worker and replica finds the backend that holds a
response another one relayed. Each id is one key that expires a day after it was written (a model
server rarely keeps a response longer: it stores them in memory until it restarts).

Errors propagate as they are; the pipeline decides (a lost ``remember`` is logged, a failed ``find``
is a 503).
"""

from __future__ import annotations

import orjson

from maas_gateway.limits.script_runner import script_runner
from maas_gateway.proxy.response_owners import ResponseOwner

__all__ = ["RedisResponseOwners"]

_KEPT_MILLISECONDS = 24 * 3600 * 1000
# Single-key scripts, so that a Redis Cluster sends each to the node that owns its key.
_SET = "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1"
_GET = "return redis.call('GET', KEYS[1])"
_DEL = "return redis.call('DEL', KEYS[1])"


class RedisResponseOwners:
    def __init__(self, url: str, *, timeout: float, prefix: str = "maas:responses:") -> None:
        self._runner = script_runner(url, timeout)
        self._prefix = prefix

    async def remember(self, response_id: str, owner: ResponseOwner) -> None:
        value = orjson.dumps([owner.user, owner.model, owner.backend_url]).decode()
        await self._runner.script(_SET, [self._prefix + response_id], [value, _KEPT_MILLISECONDS])

    async def find(self, response_id: str) -> ResponseOwner | None:
        raw = await self._runner.script(_GET, [self._prefix + response_id], [])
        if raw is None:
            return None
        user, model, backend_url = orjson.loads(raw)
        return ResponseOwner(str(user), str(model), str(backend_url))

    async def forget(self, response_id: str) -> None:
        await self._runner.script(_DEL, [self._prefix + response_id], [])

    async def aclose(self) -> None:
        await self._runner.aclose()
