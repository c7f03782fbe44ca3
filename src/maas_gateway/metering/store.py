"""The ledger's storage interface, its in-memory implementation, and the aggregation both share.

Writes are idempotent by ``request_id`` so that a batch retried after a failure, or replayed from the
spool after a crash, never counts a request twice.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from maas_gateway.metering.memory_rollups import MemoryRollups
from maas_gateway.metering.records import UsageRecord

__all__ = [
    "GROUPS",
    "RECENT_KEPT",
    "Group",
    "InMemoryLedgerStore",
    "LedgerStore",
    "UsageQuery",
    "UsageRow",
    "report_order",
]

Group = Literal["user", "tier", "model", "endpoint", "day", "hour", "team"]
GROUPS: tuple[Group, ...] = ("user", "tier", "model", "endpoint", "day", "hour", "team")
RECENT_KEPT = 50  # records per user the in-memory store keeps for ``recent``
_RECENT_USERS = 10_000  # users whose recent records it keeps, the least recently active dropped first


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
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    charged_tokens: int
    cost: float

    @classmethod
    def of(cls, groups: dict[str, str | int | None], sums: Sequence[float]) -> UsageRow:
        """A row from its groups and the eight sums, in field order (cost last)."""
        requests, limited, failed, prompt, completion, total, charged = (int(v) for v in sums[:7])
        return cls(groups, requests, limited, failed, prompt, completion, total, charged, float(sums[7]))

    def as_dict(self) -> dict[str, object]:
        return {
            **self.groups,
            "requests": self.requests,
            "rate_limited": self.rate_limited,
            "failed": self.failed,
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

    def _keep_recent(self, record: UsageRecord) -> None:
        kept = self._recent.pop(record.user, None) or deque(maxlen=RECENT_KEPT)
        kept.append(record)
        self._recent[record.user] = kept
        if len(self._recent) > _RECENT_USERS:
            self._recent.popitem(last=False)

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
            target = totals.setdefault(key, [0, 0, 0, 0, 0, 0, 0, 0.0])
            requests = sums[0]
            target[0] += requests
            target[1] += requests if outcome == "rate_limited" else 0
            target[2] += requests if outcome == "failed" else 0
            for index in range(3, 8):  # prompt, completion, total, charged tokens, cost
                target[index] += sums[index - 2]
        rows = [
            UsageRow.of(dict(zip(query.group_by, key, strict=True)), sums) for key, sums in totals.items()
        ]
        return sorted(rows, key=report_order)

    async def aclose(self) -> None:
        return None
