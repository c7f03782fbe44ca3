"""Where limit counters live: the interface, and the in-process implementation.

Check-and-count is one atomic operation so that concurrent requests can never both take the last unit:
``admit`` checks every counter of a request and, only if all pass, adds to all of them. The Redis
implementation does the same in one Lua script; this one relies on the event loop running the whole
method without yielding. A check of a sliding rule also reads the previous window's counter and adds its
weighted share (limits/sliding.py) to the value it tests; both implementations do that in integers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from maas_gateway.limits.sliding import carried_over

__all__ = ["AdmitResult", "Check", "InMemoryLimitStorage", "LimitStorage"]


@dataclass(slots=True)  # per request: a frozen dataclass costs 4x as much to build
class Check:
    """One counter to test and increment.

    The check passes when ``value + cost <= limit`` if ``must_fit``, else when ``value < limit``
    (tokens are admitted while any are left, and charged later). ``ttl`` is how long, in seconds from
    now, the counter must live: until its window ends (a sliding rule's: until the next one ends). For a
    sliding rule, ``value`` is the counter plus ``previous_key``'s counter times ``weight`` millionths.
    """

    key: str
    limit: int
    cost: int
    must_fit: bool
    ttl: float
    previous_key: str | None = None
    weight: int = 0


@dataclass(slots=True)  # per request: a frozen dataclass costs 4x as much to build
class AdmitResult:
    admitted: bool
    values: tuple[int, ...]  # after the increment if admitted, as found otherwise; sliding: with carried
    failed: int | None  # index of the first check that did not pass
    previous: tuple[int, ...] = ()  # sliding checks: the previous window's count (0 for fixed checks);
    # empty when every check is fixed


class LimitStorage(Protocol):
    async def admit(self, checks: Sequence[Check], now: float) -> AdmitResult:
        """Atomically test every check and, if all pass, add each cost to its counter."""
        ...

    async def add(
        self, keys: Sequence[str], amounts: Sequence[int], ttls: Sequence[float], now: float
    ) -> tuple[int, ...]:
        """Add amounts (possibly negative) to counters, creating them with the given TTLs."""
        ...

    async def peek(self, keys: Sequence[str], now: float) -> tuple[int, ...]:
        """The counters' values now (0 for a counter that does not exist), changing nothing: what the
        portal shows as used in each window."""
        ...

    async def ping(self) -> bool:
        """Whether the storage answers; used by ``/ready``."""
        ...

    async def aclose(self) -> None: ...


def _reads_previous(checks: Sequence[Check]) -> bool:
    # A loop rather than any() over a generator: this runs on every admission, and costs half as much.
    for check in checks:  # noqa: SIM110  # see above: measured 110 ns against 220 ns for four checks
        if check.previous_key is not None:
            return True
    return False


class InMemoryLimitStorage:
    """Counters in a dict, for one process. Expired counters are dropped lazily and by a sweep."""

    _SWEEP_EVERY = 10_000

    def __init__(self) -> None:
        self._counters: dict[str, tuple[int, float]] = {}
        self._operations = 0

    def _value(self, key: str, now: float) -> int:
        entry = self._counters.get(key)
        if entry is None:
            return 0
        if entry[1] <= now:
            del self._counters[key]
            return 0
        return entry[0]

    def _set(self, key: str, value: int, ttl: float, now: float) -> None:
        entry = self._counters.get(key)
        expires = entry[1] if entry is not None and entry[1] > now else now + ttl
        self._counters[key] = (value, expires)

    async def admit(self, checks: Sequence[Check], now: float) -> AdmitResult:
        self._maybe_sweep(now)
        values = [self._value(check.key, now) for check in checks]
        previous: tuple[int, ...] = ()
        carried: list[int] = []
        if _reads_previous(checks):
            previous = tuple(
                self._value(check.previous_key, now) if check.previous_key is not None else 0
                for check in checks
            )
            carried = [
                carried_over(count, check.weight) for count, check in zip(previous, checks, strict=True)
            ]
            values = [value + share for value, share in zip(values, carried, strict=True)]
        for index, (check, value) in enumerate(zip(checks, values, strict=True)):
            over = value + check.cost > check.limit if check.must_fit else value >= check.limit
            if over:
                return AdmitResult(False, tuple(values), index, previous)
        for index, check in enumerate(checks):
            if check.cost:
                values[index] += check.cost
                self._set(check.key, values[index] - (carried[index] if carried else 0), check.ttl, now)
        return AdmitResult(True, tuple(values), None, previous)

    async def add(
        self, keys: Sequence[str], amounts: Sequence[int], ttls: Sequence[float], now: float
    ) -> tuple[int, ...]:
        results = []
        for key, amount, ttl in zip(keys, amounts, ttls, strict=True):
            value = self._value(key, now) + amount
            self._set(key, value, ttl, now)
            results.append(value)
        return tuple(results)

    async def peek(self, keys: Sequence[str], now: float) -> tuple[int, ...]:
        return tuple(self._value(key, now) for key in keys)

    async def ping(self) -> bool:
        return True

    async def aclose(self) -> None:
        self._counters.clear()

    def _maybe_sweep(self, now: float) -> None:
        self._operations += 1
        if self._operations % self._SWEEP_EVERY:
            return
        for key in [k for k, (_, expires) in self._counters.items() if expires <= now]:
            del self._counters[key]

    def __len__(self) -> int:
        return len(self._counters)
