"""Limit counters in Redis, shared by every gateway replica and surviving their restarts.

Check-and-count is one Lua script: one round trip per request, atomic on the server, so replicas can
never both take a user's last unit. A user's counters carry a hash tag (``{user}``) so that they live in
one Redis Cluster slot and a script may touch all of them. Counters expire with their windows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis.asyncio as redis
from redis.asyncio.cluster import RedisCluster

from maas_gateway.limits.storage import AdmitResult, Check

__all__ = ["RedisLimitStorage"]

# KEYS: the counters. ARGV: for each counter, limit, cost, must_fit (1/0), ttl in milliseconds.
# Returns {admitted (1/0), index of the failed check (-1 if none), value, value, ...}.
_ADMIT = """
local values = {}
for i = 1, #KEYS do
  values[i] = tonumber(redis.call('GET', KEYS[i]) or '0')
end
for i = 1, #KEYS do
  local base = (i - 1) * 4
  local limit, cost = tonumber(ARGV[base + 1]), tonumber(ARGV[base + 2])
  local over
  if ARGV[base + 3] == '1' then over = values[i] + cost > limit else over = values[i] >= limit end
  if over then
    local result = {0, i - 1}
    for j = 1, #KEYS do result[j + 2] = values[j] end
    return result
  end
end
local result = {1, -1}
for i = 1, #KEYS do
  local base = (i - 1) * 4
  local cost = tonumber(ARGV[base + 2])
  if cost ~= 0 then
    values[i] = redis.call('INCRBY', KEYS[i], cost)
    if redis.call('PTTL', KEYS[i]) < 0 then redis.call('PEXPIRE', KEYS[i], ARGV[base + 4]) end
  end
  result[i + 2] = values[i]
end
return result
"""

# KEYS: counters. ARGV: for each, amount and ttl in milliseconds. Returns the new values.
_ADD = """
local result = {}
for i = 1, #KEYS do
  result[i] = redis.call('INCRBY', KEYS[i], ARGV[(i - 1) * 2 + 1])
  if redis.call('PTTL', KEYS[i]) < 0 then redis.call('PEXPIRE', KEYS[i], ARGV[(i - 1) * 2 + 2]) end
end
return result
"""


def _client(url: str, timeout: float) -> Any:
    options: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "decode_responses": False,
    }
    if url.startswith("redis+cluster://"):
        return RedisCluster.from_url("redis://" + url.removeprefix("redis+cluster://"), **options)
    return redis.Redis.from_url(url, health_check_interval=30, **options)


class RedisLimitStorage:
    """A ``LimitStorage`` on Redis. Errors propagate; ``ResilientStorage`` applies the failure policy."""

    def __init__(self, url: str, *, timeout: float, prefix: str = "maas:limits:") -> None:
        self._client = _client(url, timeout)
        self._prefix = prefix
        self._admit = self._client.register_script(_ADMIT)
        self._add = self._client.register_script(_ADD)

    def _key(self, key: str) -> str:
        user, _, rest = key.partition("\x1f")
        return f"{self._prefix}{{{user}}}:{rest.replace(chr(0x1F), ':')}"

    async def admit(self, checks: Sequence[Check], now: float) -> AdmitResult:
        if not checks:
            return AdmitResult(True, (), None)
        args: list[int] = []
        for check in checks:
            args += [check.limit, check.cost, int(check.must_fit), max(1, int(check.ttl * 1000))]
        reply = await self._admit(keys=[self._key(check.key) for check in checks], args=args)
        admitted, failed, *values = (int(item) for item in reply)
        return AdmitResult(bool(admitted), tuple(values), None if failed < 0 else failed)

    async def add(
        self, keys: Sequence[str], amounts: Sequence[int], ttls: Sequence[float], now: float
    ) -> tuple[int, ...]:
        args: list[int] = []
        for amount, ttl in zip(amounts, ttls, strict=True):
            args += [amount, max(1, int(ttl * 1000))]
        reply = await self._add(keys=[self._key(key) for key in keys], args=args)
        return tuple(int(item) for item in reply)

    async def ping(self) -> bool:
        return bool(await self._client.ping())

    async def aclose(self) -> None:
        await self._client.aclose()
