"""The ledger's storage interface, its in-memory implementation, and the aggregation both share.

Writes are idempotent by ``request_id`` so that a batch retried after a failure, or replayed from the
spool after a crash, never counts a request twice.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from maas_gateway.metering.memory_rollups import MemoryRollups
from maas_gateway.metering.records import UsageRecord

__all__ = [
    "GROUPS",
    "RECENT_KEPT",
    "BackendTotals",
    "Group",
    "InMemoryLedgerStore",
    "LedgerBackendTotals",
    "LedgerStore",
    "RawRecordPruning",
    "UsageQuery",
    "UsageRow",
    "report_order",
]

Group = Literal["user", "tier", "model", "endpoint", "day", "hour", "team"]
GROUPS: tuple[Group, ...] = ("user", "tier", "model", "endpoint", "day", "hour", "team")
RECENT_KEPT = 50  # records per user the in-memory store keeps for ``recent``
_RECENT_USERS = 10_000  # users whose recent records it keeps, the least recently active dropped first
_BACKEND_SECONDS_KEPT = 2 * 86400  # the in-memory ledger's per-second sums by backend, for reconciliation

# (backend, model) -> (prompt tokens, completion tokens, requests) over a period; model None for requests
# without one. The tokens the ledger says each backend processed, for reconciliation.
BackendTotals = dict[tuple[str, str | None], tuple[int, int, int]]


@dataclass(frozen=True, slots=True)
class UsageQuery:
    since: float  # Unix time, inclusive
    until: float  # Unix time, exclusive
    group_by: tuple[Group, ...] = ("user", "model")
    user: str | None = None  # only this user's records


@dataclass(frozen=True, slots=True)
class UsageRow:
    groups: dict[str, str | int | None]
    requests: int
    rate_limited: int
    failed: int  # failed at the gateway or a backend, and not charged
    broken: int  # streams the backend broke off mid-way, charged for what was delivered
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    charged_tokens: int
    cost: float

    @classmethod
    def of(cls, groups: dict[str, str | int | None], sums: Sequence[float]) -> UsageRow:
        """A row from its groups and the nine sums, in field order (cost last)."""
        requests, limited, failed, broken, prompt, completion, total, charged = (int(v) for v in sums[:8])
        return cls(
            groups, requests, limited, failed, broken, prompt, completion, total, charged, float(sums[8])
        )

    def as_dict(self) -> dict[str, object]:
        return {
            **self.groups,
            "requests": self.requests,
            "rate_limited": self.rate_limited,
            "failed": self.failed,
            "broken": self.broken,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "charged_tokens": self.charged_tokens,
            "cost": round(self.cost, 10),
        }


def report_order(row: UsageRow) -> tuple[tuple[bool, str | int], ...]:
    """The order of a report's rows, the same on every store: by each group in turn, missing values last."""
    return tuple((value is None, value if value is not None else "") for value in row.groups.values())


class LedgerStore(Protocol):
    async def start(self) -> None:
        """Connect (and migrate, where configured)."""
        ...

    async def write(self, records: Sequence[UsageRecord]) -> None:
        """Store records; a record whose request_id is already stored is skipped."""
        ...

    async def aggregate(self, query: UsageQuery) -> list[UsageRow]: ...

    async def recent(self, user: str, *, since: float, limit: int) -> list[UsageRecord]:
        """``user``'s newest records from ``since`` on, newest first, at most ``limit`` (the portal's last
        calls; the in-memory store keeps only the last ``RECENT_KEPT`` per user)."""
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class RawRecordPruning(Protocol):
    """Deleting raw records past their retention (both stores implement it); rollups are never touched."""

    async def prune_raw(self, before_hour: int, *, limit: int) -> int:
        """Delete at most ``limit`` raw records of the hours before ``before_hour`` (whole hours, so that
        a report over the pruned hours reads the same rollups as before); return how many went."""
        ...


@runtime_checkable
class LedgerBackendTotals(Protocol):
    """The ledger's side of reconciliation (both stores implement it)."""

    async def backend_totals(self, since: float, until: float) -> BackendTotals:
        """The tokens of the records from ``since`` (included) to ``until`` (excluded) that reached a
        backend, by backend and model (read from the raw records: within their retention only)."""
        ...


class InMemoryLedgerStore:
    """Usage kept in this process only, for demos and tests: gone at restart, and reported by the hour
    (``since`` and ``until`` round out to whole hours).

    Records are folded into hourly rollups (``MemoryRollups``) as they arrive, so memory grows with the
    number of combinations per hour, not with the number of requests; ``InMemoryUsageReports`` reads
    the same rollups. Idempotency is kept for the last ``remembered`` request ids: enough for the
    retries and replays that happen within minutes.
    """

    def __init__(self, remembered: int = 100_000, rollups: MemoryRollups | None = None) -> None:
        self.rollups = rollups if rollups is not None else MemoryRollups()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._remembered = remembered
        self._recent: OrderedDict[str, deque[UsageRecord]] = OrderedDict()
        # (second, backend, model) -> [prompt, completion, requests], the last two days' only.
        self._by_backend: dict[tuple[int, str, str | None], list[int]] = {}
        self._oldest_second = 0

    async def start(self) -> None:
        return None

    async def write(self, records: Sequence[UsageRecord]) -> None:
        for record in records:
            if record.request_id in self._seen:
                continue
            self._seen[record.request_id] = None
            if len(self._seen) > self._remembered:
                self._seen.popitem(last=False)
            self.rollups.add(record)
            self._keep_recent(record)
            if record.backend is not None:
                self._add_to_backend(record, record.backend)

    def _add_to_backend(self, record: UsageRecord, backend: str) -> None:
        second = int(record.created_at)
        key = (second, backend, record.model)
        sums = self._by_backend.get(key)
        if sums is None:  # not setdefault: that builds a list per record, kept only once a second
            sums = self._by_backend[key] = [0, 0, 0]
        sums[0] += record.prompt_tokens
        sums[1] += record.completion_tokens
        sums[2] += 1
        if second - self._oldest_second > 2 * _BACKEND_SECONDS_KEPT:  # now and then, not per record
            self._oldest_second = second - _BACKEND_SECONDS_KEPT
            self._by_backend = {k: v for k, v in self._by_backend.items() if k[0] >= self._oldest_second}

    async def prune_raw(self, before_hour: int, *, limit: int) -> int:
        """The raw records this store keeps are each user's last few (``recent``) and the per-second sums
        by backend; the rollups that reports read are kept."""
        before = before_hour * 3600
        pruned = 0
        for user in list(self._recent):
            kept = self._recent[user]
            while kept and kept[0].created_at < before and pruned < limit:
                kept.popleft()
                pruned += 1
            if not kept:
                del self._recent[user]
        self._by_backend = {key: sums for key, sums in self._by_backend.items() if key[0] >= before}
        return pruned

    async def backend_totals(self, since: float, until: float) -> BackendTotals:
        """By whole seconds: a record counts in the period when the second it arrived in starts in it."""
        totals: dict[tuple[str, str | None], list[int]] = {}
        for (second, backend, model), sums in self._by_backend.items():
            if since <= second < until:
                target = totals.setdefault((backend, model), [0, 0, 0])
                for index in range(3):
                    target[index] += sums[index]
        return {key: (sums[0], sums[1], sums[2]) for key, sums in totals.items()}

    def _keep_recent(self, record: UsageRecord) -> None:
        kept = self._recent.get(record.user)
        if kept is None:
            kept = self._recent[record.user] = deque(maxlen=RECENT_KEPT)
            if len(self._recent) > _RECENT_USERS:
                self._recent.popitem(last=False)
        else:
            self._recent.move_to_end(record.user)  # the most recently active user is evicted last
        kept.append(record)

    async def recent(self, user: str, *, since: float, limit: int) -> list[UsageRecord]:
        kept = self._recent.get(user, ())
        newest = sorted((r for r in kept if r.created_at >= since), key=lambda r: r.created_at, reverse=True)
        return newest[:limit]

    async def aggregate(self, query: UsageQuery) -> list[UsageRow]:
        first, last = int(query.since // 3600), int(-(-query.until // 3600))
        totals: dict[tuple[str | int | None, ...], list[float]] = {}
        for (hour, user, tier, model, endpoint, _key, outcome, team), sums in self.rollups.in_hours(
            first, last, query.user
        ):
            values = {
                "user": user,
                "tier": tier,
                "model": model,
                "endpoint": endpoint,
                "day": (hour // 24) * 86400,
                "hour": hour * 3600,
                "team": team or None,
            }
            key = tuple(values[group] for group in query.group_by)
            target = totals.setdefault(key, [0, 0, 0, 0, 0, 0, 0, 0, 0.0])
            requests = sums[0]
            target[0] += requests
            target[1] += requests if outcome == "rate_limited" else 0
            target[2] += requests if outcome == "failed" else 0
            target[3] += requests if outcome == "broken" else 0
            for index in range(4, 9):  # prompt, completion, total, charged tokens, cost
                target[index] += sums[index - 3]
        rows = [
            UsageRow.of(dict(zip(query.group_by, key, strict=True)), sums) for key, sums in totals.items()
        ]
        return sorted(rows, key=report_order)

    async def aclose(self) -> None:
        return None
