"""``UsageReports`` over the in-memory ledger's rollups, answering as the SQL implementation does."""

from __future__ import annotations

from collections.abc import Sequence

from maas_gateway.metering.memory_rollups import MemoryRollups, RollupKey, totals_of
from maas_gateway.metering.records import UsageRecord
from maas_gateway.metering.reports import (
    Dimension,
    Measure,
    ReportRange,
    UsageGroup,
    UsageTotals,
    check_after,
    check_dimensions,
    group_order,
)

__all__ = ["InMemoryUsageReports"]


def _value(key: RollupKey, name: Dimension) -> str | int | None:
    hour, user, tier, model, endpoint, key_id, outcome, team = key
    values: dict[str, str | int | None] = {
        "user": user,
        "tier": tier,
        "model": model,
        "endpoint": endpoint,
        "key_id": key_id,
        "outcome": outcome,
        "team": team or None,
        "day": (hour // 24) * 86400,
        "hour": hour * 3600,
    }
    return values[name]


class InMemoryUsageReports:
    def __init__(self, rollups: MemoryRollups) -> None:
        self.rollups = rollups

    async def totals(self, period: ReportRange, *, user: str | None = None) -> UsageTotals:
        groups = self._grouped(period, (), user)
        return groups[0].totals if groups else UsageTotals()

    async def breakdown(
        self,
        period: ReportRange,
        group_by: Sequence[Dimension],
        *,
        user: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        after: Sequence[str | int | None] | None = None,
    ) -> list[UsageGroup]:
        check_dimensions(group_by)
        check_after(group_by, after)
        groups = self._grouped(period, group_by, user)
        groups.sort(key=lambda group: group_order(group.key.values()))
        if after is not None:
            last = group_order(after)
            groups = [group for group in groups if group_order(group.key.values()) > last]
        return groups[offset : None if limit is None else offset + limit]

    async def top(
        self, period: ReportRange, dimension: Dimension, *, by: Measure = "cost", limit: int = 10
    ) -> list[UsageGroup]:
        check_dimensions((dimension,))
        groups = self._grouped(period, (dimension,), None)
        groups.sort(key=lambda group: (-getattr(group.totals, by), group_order((group.key[dimension],))))
        return groups[:limit]

    async def recent_calls(self, user: str, limit: int = 20) -> list[UsageRecord]:
        return self.rollups.recent(user, limit)

    def _grouped(
        self, period: ReportRange, group_by: Sequence[Dimension], user: str | None
    ) -> list[UsageGroup]:
        sums: dict[tuple[str | int | None, ...], list[float]] = {}
        for key, bucket in self.rollups.in_hours(period.first_hour, period.last_hour, user):
            group = tuple(_value(key, name) for name in group_by)
            target = sums.get(group)
            if target is None:
                target = sums[group] = [0] * 13
            for index, value in enumerate(totals_of(key[6], bucket)):
                target[index] += value
        return [
            UsageGroup(dict(zip(group_by, group, strict=True)), UsageTotals.of(values))
            for group, values in sums.items()
        ]
