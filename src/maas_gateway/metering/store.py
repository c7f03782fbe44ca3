"""The ledger's storage interface, its in-memory implementation, and the aggregation both share.

Writes are idempotent by ``request_id`` so that a batch retried after a failure, or replayed from the
spool after a crash, never counts a request twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from maas_gateway.metering.records import UsageRecord

__all__ = ["GROUPS", "Group", "InMemoryLedgerStore", "LedgerStore", "UsageQuery", "UsageRow"]

Group = Literal["user", "tier", "model", "endpoint", "day", "hour"]
GROUPS: tuple[Group, ...] = ("user", "tier", "model", "endpoint", "day", "hour")


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
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    charged_tokens: int
    cost: float

    @classmethod
    def of(cls, groups: dict[str, str | int | None], sums: Sequence[float]) -> UsageRow:
        """A row from its groups and the seven sums, in field order (cost last)."""
        requests, limited, prompt, completion, total, charged = (int(v) for v in sums[:6])
        return cls(groups, requests, limited, prompt, completion, total, charged, float(sums[6]))

    def as_dict(self) -> dict[str, object]:
        return {
            **self.groups,
            "requests": self.requests,
            "rate_limited": self.rate_limited,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "charged_tokens": self.charged_tokens,
            "cost": round(self.cost, 10),
        }


class LedgerStore(Protocol):
    async def start(self) -> None:
        """Connect (and migrate, where configured)."""
        ...

    async def write(self, records: Sequence[UsageRecord]) -> None:
        """Store records; a record whose request_id is already stored is skipped."""
        ...

    async def aggregate(self, query: UsageQuery) -> list[UsageRow]: ...

    async def aclose(self) -> None: ...


def group_value(record: UsageRecord, group: Group) -> str | int | None:
    if group == "day":
        return (record.hour // 24) * 86400
    if group == "hour":
        return record.hour * 3600
    value: str | None = getattr(record, group)
    return value


def aggregate_records(records: Iterable[UsageRecord], query: UsageQuery) -> list[UsageRow]:
    """Group and sum records in Python: the reference the SQL store must agree with."""
    totals: dict[tuple[str | int | None, ...], list[float]] = {}
    for record in records:
        if not query.since <= record.created_at < query.until:
            continue
        if query.user is not None and record.user != query.user:
            continue
        key = tuple(group_value(record, group) for group in query.group_by)
        sums = totals.setdefault(key, [0, 0, 0, 0, 0, 0, 0.0])
        for index, value in enumerate(
            (
                1,
                int(record.rate_limited),
                record.prompt_tokens,
                record.completion_tokens,
                record.total_tokens,
                record.charged_tokens,
                record.cost,
            )
        ):
            sums[index] += value
    rows = [UsageRow.of(dict(zip(query.group_by, key, strict=True)), sums) for key, sums in totals.items()]
    return sorted(rows, key=lambda row: tuple(str(v) for v in row.groups.values()))


class InMemoryLedgerStore:
    """Usage kept in this process only: for demos and tests, gone at restart."""

    def __init__(self) -> None:
        self.records: dict[str, UsageRecord] = {}

    async def start(self) -> None:
        return None

    async def write(self, records: Sequence[UsageRecord]) -> None:
        for record in records:
            self.records.setdefault(record.request_id, record)

    async def aggregate(self, query: UsageQuery) -> list[UsageRow]:
        return aggregate_records(self.records.values(), query)

    async def aclose(self) -> None:
        return None
