"""A usage record's outcome: the class that rollups count requests by."""

from __future__ import annotations

from typing import Literal

from maas_gateway.metering.records import UsageRecord

__all__ = ["OUTCOMES", "Outcome", "outcome_of"]

Outcome = Literal["ok", "client_error", "failed", "rate_limited", "broken"]
# ok: answered (status below 400). client_error: refused for the caller's own fault (a backend's 400,
# an unknown model). failed: admitted, then failed at the gateway or a backend, not charged.
# rate_limited: refused at admission with a 429. The pipeline sets rate_limited and failed exclusively
# (a 429 comes before admission, a failure after it), so counting by outcome keeps both counts exact.
# broken: a stream the backend broke off after its 200 (charged for what was delivered).
OUTCOMES: tuple[Outcome, ...] = ("ok", "client_error", "failed", "rate_limited", "broken")


def outcome_of(record: UsageRecord) -> Outcome:
    """The Python twin of ``rollups._outcome`` (SQL); tests hold the two equal."""
    if record.rate_limited:
        return "rate_limited"
    if record.failed:
        return "failed"
    if record.broken:
        return "broken"
    if record.status >= 400:
        return "client_error"
    return "ok"
