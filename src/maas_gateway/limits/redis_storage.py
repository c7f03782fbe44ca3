"""Limit counters in Redis, shared by every gateway replica and surviving their restarts.

Check-and-count is one Lua script: one round trip per request, atomic on the server, so replicas can
never both take a user's last unit. A user's counters carry a hash tag (``{user}``) so that they live in
one Redis Cluster slot and a script may touch all of them. Counters expire with their windows.

A standalone Redis is spoken to over one multiplexed connection (``redis_connection.py``), Redis Cluster
through redis-py's cluster client, which sends each script to the node that owns its slot.
"""

from __future__ import annotations

from collections.abc import Sequence

from maas_gateway.limits.script_runner import script_runner
from maas_gateway.limits.storage import AdmitResult, Check

__all__ = ["RedisLimitStorage"]

# KEYS: the counters, then the previous windows' counters of sliding checks. ARGV: the number of checks,
# then for each check limit, cost, must_fit (1/0), ttl in milliseconds, the index in KEYS of its previous
# counter (0: a fixed check) and that counter's weight in millionths.
# Returns {admitted (1/0), index of the failed check (-1 if none), value, ..., previous, ...}: each value
# with its previous window's weighted share, then the previous windows' counts. The share is
# floor(previous * weight / 1e6), computed exactly
# (every product stays below 2^53) so it equals the in-process storage's integer division.
_ADMIT = """
local n = tonumber(ARGV[1])
local values, carried, previous = {}, {}, {}
for i = 1, n do
  local base = 1 + (i - 1) * 6
  values[i] = tonumber(redis.call('GET', KEYS[i]) or '0')
  carried[i], previous[i] = 0, 0
  local at = tonumber(ARGV[base + 5])
  if at > 0 then
    previous[i] = tonumber(redis.call('GET', KEYS[at]) or '0')
    local weight = tonumber(ARGV[base + 6])
    if previous[i] > 0 and weight > 0 then
      local product = previous[i] * weight
      carried[i] = (product - math.fmod(product, 1000000)) / 1000000
      values[i] = values[i] + carried[i]
    end
  end
end
local function reply(admitted, failed)
  local result = {admitted, failed}
  for j = 1, n do result[j + 2] = values[j] end
  for j = 1, n do result[n + j + 2] = previous[j] end
  return result
end
for i = 1, n do
  local base = 1 + (i - 1) * 6
  local limit, cost = tonumber(ARGV[base + 1]), tonumber(ARGV[base + 2])
  local over
  if ARGV[base + 3] == '1' then over = values[i] + cost > limit else over = values[i] >= limit end
  if over then return reply(0, i - 1) end
end
for i = 1, n do
  local base = 1 + (i - 1) * 6
  local cost = tonumber(ARGV[base + 2])
  if cost ~= 0 then
    values[i] = redis.call('INCRBY', KEYS[i], cost) + carried[i]
    if redis.call('PTTL', KEYS[i]) < 0 then redis.call('PEXPIRE', KEYS[i], ARGV[base + 4]) end
  end
end
return reply(1, -1)
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

# KEYS: counters. Returns their values (0 for a missing one). A script rather than MGET so that Redis
# Cluster routes it like the others (a user's counters share one slot through their hash tag).
_PEEK = """
local result = {}
for i = 1, #KEYS do result[i] = tonumber(redis.call('GET', KEYS[i]) or '0') end
return result
"""


class RedisLimitStorage:
    """A ``LimitStorage`` on Redis. Errors propagate; ``ResilientStorage`` applies the failure policy.

    Every operation ends within ``timeout`` (raising ``TimeoutError``): the connection enforces it.
    """

    def __init__(
        self, url: str, *, timeout: float, prefix: str = "maas:limits:", one_slot: bool = False
    ) -> None:
        """``one_slot`` puts every counter in one Redis Cluster slot: a request checked against a team's,
        a key's, the tier's or everyone's counter beside its user's must find them all on one node for
        the check to stay one atomic script. Without it each user's counters share a slot of their own
        (the load spreads over the cluster). On a single Redis it changes nothing."""
        self._runner = script_runner(url, timeout)
        self._prefix = prefix
        self._one_slot = one_slot

    def _key(self, key: str) -> str:
        user, _, rest = key.partition("\x1f")
        if self._one_slot:
            return f"{self._prefix}{{maas}}:{key.replace(chr(0x1F), ':')}"
        return f"{self._prefix}{{{user}}}:{rest.replace(chr(0x1F), ':')}"

    async def admit(self, checks: Sequence[Check], now: float) -> AdmitResult:
        if not checks:
            return AdmitResult(True, (), None)
        count = len(checks)
        keys = [self._key(check.key) for check in checks]
        args: list[int | str] = [count]
        for check in checks:
            at = 0
            if check.previous_key is not None:
                keys.append(self._key(check.previous_key))
                at = len(keys)  # Lua counts from 1
            ttl = max(1, int(check.ttl * 1000))
            args += [check.limit, check.cost, int(check.must_fit), ttl, at, check.weight]
        reply = await self._runner.script(_ADMIT, keys, args)
        admitted, failed = int(reply[0]), int(reply[1])
        values = tuple(int(item) for item in reply[2 : 2 + count])
        previous = tuple(int(item) for item in reply[2 + count :]) if count < len(keys) else ()
        return AdmitResult(bool(admitted), values, None if failed < 0 else failed, previous)

    async def add(
        self, keys: Sequence[str], amounts: Sequence[int], ttls: Sequence[float], now: float
    ) -> tuple[int, ...]:
        args: list[int | str] = []
        for amount, ttl in zip(amounts, ttls, strict=True):
            args += [amount, max(1, int(ttl * 1000))]
        reply = await self._runner.script(_ADD, [self._key(key) for key in keys], args)
        return tuple(int(item) for item in reply)

    async def peek(self, keys: Sequence[str], now: float) -> tuple[int, ...]:
        if not keys:
            return ()
        reply = await self._runner.script(_PEEK, [self._key(key) for key in keys], [])
        return tuple(int(item) for item in reply)

    async def ping(self) -> bool:
        return await self._runner.ping()

    async def aclose(self) -> None:
        await self._runner.aclose()
