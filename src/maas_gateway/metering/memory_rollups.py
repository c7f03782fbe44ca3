"""Hourly rollups kept in this process, for the in-memory ledger: the same dimensions and measures as
``usage_hourly``, and each user's last few raw records for the portal's "last calls"."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

from maas_gateway.metering.outcomes import OUTCOMES, outcome_of
from maas_gateway.metering.records import UsageRecord

__all__ = ["MemoryRollups", "RollupKey", "totals_of"]

# hour, user, tier, model, endpoint, key_id, outcome, team (as usage_hourly's primary key; model may be
# None)
RollupKey = tuple[int, str, str, str | None, str, str, str, str]


class MemoryRollups:
    """Memory grows with the combinations of dimensions per hour, not with the number of requests."""

    def __init__(self, recent_per_user: int = 100) -> None:
        # requests, prompt, completion, total, charged tokens, cost, streamed, latency_ms (a sum)
        self.buckets: dict[RollupKey, list[float]] = {}
        self.recent_per_user = recent_per_user
        self._recent: dict[str, deque[UsageRecord]] = {}

    def add(self, record: UsageRecord) -> None:
        key = (
            record.hour,
            record.user,
            record.tier,
            record.model,
            record.endpoint,
            record.key_id,
            outcome_of(record),
            record.team,
        )
        sums = self.buckets.get(key)
        if sums is None:
            sums = self.buckets[key] = [0, 0, 0, 0, 0, 0.0, 0, 0.0]
        sums[0] += 1
        sums[1] += record.prompt_tokens
        sums[2] += record.completion_tokens
        sums[3] += record.total_tokens
        sums[4] += record.charged_tokens
        sums[5] += record.cost
        sums[6] += int(record.streamed)
        sums[7] += record.latency_ms
        recent = self._recent.get(record.user)
        if recent is None:
            recent = self._recent[record.user] = deque(maxlen=self.recent_per_user)
        recent.append(record)

    def in_hours(
        self, first_hour: int, last_hour: int, user: str | None
    ) -> Iterator[tuple[RollupKey, list[float]]]:
        for key, sums in self.buckets.items():
            if first_hour <= key[0] < last_hour and (user is None or key[1] == user):
                yield key, sums

    def recent(self, user: str, limit: int) -> list[UsageRecord]:
        """Newest first, by the time the request arrived (records may be written out of order)."""
        records = sorted(
            self._recent.get(user, ()),
            key=lambda record: (record.created_at, record.request_id),
            reverse=True,
        )
        return records[:limit]


def totals_of(outcome: str, sums: list[float]) -> list[float]:
    """A bucket's sums in ``UsageTotals`` field order."""
    requests = sums[0]
    by_outcome = [requests if outcome == name else 0 for name in OUTCOMES]
    return [requests, *by_outcome, sums[1], sums[2], sums[3], sums[4], sums[5], sums[6], sums[7]]
