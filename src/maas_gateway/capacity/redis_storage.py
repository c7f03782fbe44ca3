"""Capacity leases in Redis, shared by every gateway replica: one Lua script per operation.

Slot sets and waiting sets are sorted sets of lease ids scored by their expiry (in milliseconds), token
budgets are counters that expire with their minute. A script purges what expired before it counts, so a
replica that died holds nothing once its leases' time has passed, without anyone cleaning up after it.
Every key carries the same hash tag so that one script may touch a model's and a user's sets together on
Redis Cluster too; the price is that all capacity keys live on one cluster node (a few small sets per
model and user, a few commands per request). Each key expires a while after its last write, so sets of
users who have gone do not stay behind.

The scripts run over the same machinery as the limit counters (``limits/script_runner.py``): one
multiplexed connection to a standalone Redis, or redis-py's cluster client. Errors propagate;
``ResilientCapacityStorage`` applies the failure policy.
"""

from __future__ import annotations

from collections.abc import Sequence

from maas_gateway.capacity.base import (
    AcquireRequest,
    AcquireResult,
    BudgetCharge,
    HeldLease,
    Refusal,
    SlotKind,
)
from maas_gateway.limits.script_runner import script_runner

__all__ = ["RedisCapacityStorage"]

_REFUSALS: dict[int, Refusal | None] = {
    0: None,
    1: "quota",
    2: "capacity",
    3: "budget",
    4: "outranked",
    5: "share",
}
_KINDS: dict[SlotKind, int] = {"quota": 1, "capacity": 2, "share": 5}

# KEYS: the slot sets (n), the budget counter (if any), the better tiers' waiting sets (m), the own
# waiting set (if any). ARGV: now, lease, expiry, n, has budget, m, has waiting, registered until, key
# lifetime (ms), budget limit, then per slot set: limit, the refusal code it gives when full.
# Returns {refusal code (0: acquired), live leases in each slot set...}.
_ACQUIRE = """
local now, lease, expiry = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local n, has_budget, m = tonumber(ARGV[4]), ARGV[5] == '1', tonumber(ARGV[6])
local has_waiting, registered_until, lifetime = ARGV[7] == '1', ARGV[8], ARGV[9]
local counts, refusal = {}, 0
for i = 1, n do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
  counts[i] = redis.call('ZCARD', KEYS[i])
end
for i = 1, n do
  if counts[i] >= tonumber(ARGV[9 + 2 * i]) then
    refusal = tonumber(ARGV[10 + 2 * i])
    break
  end
end
local next_key = n + 1
if has_budget then
  if refusal == 0 and tonumber(redis.call('GET', KEYS[next_key]) or '0') >= tonumber(ARGV[10]) then
    refusal = 3
  end
  next_key = next_key + 1
end
for j = next_key, next_key + m - 1 do
  if refusal ~= 0 then break end
  redis.call('ZREMRANGEBYSCORE', KEYS[j], '-inf', now)
  if redis.call('ZCARD', KEYS[j]) > 0 then refusal = 4 end
end
if has_waiting then
  local waiting = KEYS[next_key + m]
  if refusal == 0 or refusal == 1 or refusal == 5 then
    redis.call('ZREM', waiting, lease)
  else
    redis.call('ZADD', waiting, registered_until, lease)
    redis.call('PEXPIRE', waiting, lifetime)
  end
end
if refusal == 0 then
  for i = 1, n do
    redis.call('ZADD', KEYS[i], expiry, lease)
    redis.call('PEXPIRE', KEYS[i], lifetime)
    counts[i] = counts[i] + 1
  end
end
local result = {refusal}
for i = 1, n do result[i + 1] = counts[i] end
return result
"""

# KEYS: the lease's slot sets, then the budget counter (if charging). ARGV: lease, number of slot sets,
# tokens, counter lifetime (ms).
_RELEASE = """
local n = tonumber(ARGV[2])
for i = 1, n do redis.call('ZREM', KEYS[i], ARGV[1]) end
if #KEYS > n then
  redis.call('INCRBY', KEYS[n + 1], ARGV[3])
  if redis.call('PTTL', KEYS[n + 1]) < 0 then redis.call('PEXPIRE', KEYS[n + 1], ARGV[4]) end
end
return 1
"""

# KEYS: every lease's slot sets, one lease after the other. ARGV: now, key lifetime (ms), then per lease:
# id, expiry, number of its slot sets. Returns per lease 1 (renewed) or 0 (lost: expired or released).
_RENEW = """
local now, lifetime, k, result = tonumber(ARGV[1]), ARGV[2], 0, {}
for l = 0, (#ARGV - 2) / 3 - 1 do
  local lease, expiry, count = ARGV[3 + 3 * l], ARGV[4 + 3 * l], tonumber(ARGV[5 + 3 * l])
  local held = 1
  for i = k + 1, k + count do
    local score = redis.call('ZSCORE', KEYS[i], lease)
    if not score or tonumber(score) <= now then held = 0 end
  end
  if held == 1 then
    for i = k + 1, k + count do
      redis.call('ZADD', KEYS[i], expiry, lease)
      redis.call('PEXPIRE', KEYS[i], lifetime)
    end
  end
  result[l + 1] = held
  k = k + count
end
return result
"""

_WITHDRAW = "return redis.call('ZREM', KEYS[1], ARGV[1])"


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


class RedisCapacityStorage:
    """A ``CapacityStorage`` on Redis. Every operation ends within ``timeout`` (``TimeoutError``).

    ``key_lifetime`` is how long a set outlives its last write: longer than any lease or registration.
    """

    def __init__(
        self, url: str, *, timeout: float, key_lifetime: float = 3600.0, prefix: str = "maas:capacity:"
    ) -> None:
        self._runner = script_runner(url, timeout)
        self._prefix = prefix + "{c}:"  # one hash tag for every key: see the module's docstring
        self._lifetime = max(1, _ms(key_lifetime))

    def _key(self, key: str) -> str:
        return self._prefix + key

    async def acquire(self, request: AcquireRequest, now: float) -> AcquireResult:
        keys = [self._key(slot.key) for slot in request.slots]
        budget = request.budget
        if budget is not None:
            keys.append(self._key(budget.key))
        keys += [self._key(key) for key in request.outranked_by]
        if request.waiting is not None:
            keys.append(self._key(request.waiting))
        args: list[int | str] = [
            _ms(now),
            request.lease,
            _ms(request.expires_at),
            len(request.slots),
            int(budget is not None),
            len(request.outranked_by),
            int(request.waiting is not None),
            _ms(request.registered_until),
            self._lifetime,
            budget.limit if budget is not None else 0,
        ]
        for slot in request.slots:
            args += [slot.limit, _KINDS[slot.kind]]
        code, *counts = (int(item) for item in await self._runner.script(_ACQUIRE, keys, args))
        return AcquireResult(code == 0, _REFUSALS[code], tuple(counts))

    async def release(self, lease: str, keys: Sequence[str], charge: BudgetCharge | None, now: float) -> None:
        names = [self._key(key) for key in keys]
        args: list[int | str] = [lease, len(keys), 0, 0]
        if charge is not None:
            names.append(self._key(charge.key))
            args[2:] = [charge.amount, max(1, _ms(charge.ttl))]
        await self._runner.script(_RELEASE, names, args)

    async def renew(self, leases: Sequence[HeldLease], now: float) -> tuple[str, ...]:
        if not leases:
            return ()
        keys: list[str] = []
        args: list[int | str] = [_ms(now), self._lifetime]
        for held in leases:
            keys += [self._key(key) for key in held.keys]
            args += [held.lease, _ms(held.expires_at), len(held.keys)]
        reply = await self._runner.script(_RENEW, keys, args)
        return tuple(held.lease for held, kept in zip(leases, reply, strict=True) if not int(kept))

    async def withdraw(self, waiting: str, lease: str) -> None:
        await self._runner.script(_WITHDRAW, [self._key(waiting)], [lease])

    async def ping(self) -> bool:
        return await self._runner.ping()

    async def aclose(self) -> None:
        await self._runner.aclose()
