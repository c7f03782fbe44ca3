"""Capacity leases in one process: the in-memory ``CapacityStorage``.

It behaves as the Redis one does (tests/test_capacity_storage_contract.py runs both): each method runs
without yielding to the event loop, which makes it as atomic as the Lua scripts. It serves a gateway with
``limits.storage: memory`` (caps per process) and the fail-open fallback while Redis is unreachable.
"""

from __future__ import annotations

from collections.abc import Sequence

from maas_gateway.capacity.base import AcquireRequest, AcquireResult, BudgetCharge, HeldLease, Refusal

__all__ = ["InMemoryCapacityStorage"]


class InMemoryCapacityStorage:
    """Slot sets and waiting sets as dicts of member to expiry, token counters with their expiry."""

    _SWEEP_EVERY = 10_000

    def __init__(self) -> None:
        self._sets: dict[str, dict[str, float]] = {}  # slot sets and waiting sets alike
        self._counters: dict[str, tuple[int, float]] = {}
        self._operations = 0

    def _live(self, key: str, now: float) -> dict[str, float]:
        """The set's members that have not expired (the expired ones are dropped)."""
        members = self._sets.get(key)
        if members is None:
            return {}
        for member in [m for m, expires in members.items() if expires <= now]:
            del members[member]
        if not members:
            del self._sets[key]
            return {}
        return members

    def _counter(self, key: str, now: float) -> int:
        entry = self._counters.get(key)
        if entry is None:
            return 0
        if entry[1] <= now:
            del self._counters[key]
            return 0
        return entry[0]

    async def acquire(self, request: AcquireRequest, now: float) -> AcquireResult:
        self._maybe_sweep(now)
        counts = tuple(len(self._live(slot.key, now)) for slot in request.slots)
        refusal: Refusal | None = None
        for slot, count in zip(request.slots, counts, strict=True):
            if count >= slot.limit:
                refusal = slot.kind
                break
        budget = request.budget
        if refusal is None and budget is not None and self._counter(budget.key, now) >= budget.limit:
            refusal = "budget"
        if refusal is None and any(self._live(key, now) for key in request.outranked_by):
            refusal = "outranked"
        if request.waiting is not None:
            if refusal in (None, "quota", "share"):
                self._remove(request.waiting, request.lease)
            else:
                self._sets.setdefault(request.waiting, {})[request.lease] = request.registered_until
        if refusal is not None:
            return AcquireResult(False, refusal, counts)
        for slot in request.slots:
            self._sets.setdefault(slot.key, {})[request.lease] = request.expires_at
        return AcquireResult(True, None, tuple(count + 1 for count in counts))

    async def release(self, lease: str, keys: Sequence[str], charge: BudgetCharge | None, now: float) -> None:
        for key in keys:
            self._remove(key, lease)
        if charge is not None:
            value = self._counter(charge.key, now)  # drops the counter if its minute has gone
            entry = self._counters.get(charge.key)
            expires = entry[1] if entry is not None else now + charge.ttl
            self._counters[charge.key] = (value + charge.amount, expires)

    async def renew(self, leases: Sequence[HeldLease], now: float) -> tuple[str, ...]:
        lost: list[str] = []
        for held in leases:
            sets = [self._sets.get(key) for key in held.keys]
            if not all(members is not None and members.get(held.lease, 0.0) > now for members in sets):
                lost.append(held.lease)
                continue
            for members in sets:
                assert members is not None
                members[held.lease] = held.expires_at
        return tuple(lost)

    async def withdraw(self, waiting: str, lease: str) -> None:
        self._remove(waiting, lease)

    async def ping(self) -> bool:
        return True

    async def aclose(self) -> None:
        self._sets.clear()
        self._counters.clear()

    def _remove(self, key: str, member: str) -> None:
        members = self._sets.get(key)
        if members is not None:
            members.pop(member, None)
            if not members:
                del self._sets[key]

    def _maybe_sweep(self, now: float) -> None:
        """Every so many operations, drop what expired in sets and counters nobody has touched since."""
        self._operations += 1
        if self._operations % self._SWEEP_EVERY:
            return
        for key in list(self._sets):
            self._live(key, now)
        for key in [k for k, (_, expires) in self._counters.items() if expires <= now]:
            del self._counters[key]
