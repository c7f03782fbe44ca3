"""An alert as the outbox keeps it, and as a sender holds it while delivering it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["AlertEvent", "AlertRecord", "AlertState", "ClaimedAlert", "DeliveryState"]

DeliveryState = Literal["pending", "delivered", "failed"]


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One threshold of one budget (user, limit, window) reached, for one webhook.

    ``(webhook, user, limit_key, window_start, threshold)`` is unique: the outbox keeps the first such
    event and refuses the others, which is what makes an alert fire once across replicas.
    """

    alert_id: str
    webhook: str
    user: str
    tier: str
    limit_key: str
    limit: int
    unit: str
    window: str
    window_start: int
    window_end: int
    threshold: int
    used: int
    created_at: float

    @property
    def identity(self) -> tuple[str, str, str, int, int]:
        return (self.webhook, self.user, self.limit_key, self.window_start, self.threshold)


@dataclass(frozen=True, slots=True)
class ClaimedAlert:
    """An alert a sender holds until ``lease_until``; only the holder of ``claim`` may settle it."""

    event: AlertEvent
    attempt: int  # 1 for the first delivery
    claim: str
    lease_until: float


@dataclass(frozen=True, slots=True)
class AlertState:
    """Where an alert's delivery stands."""

    state: DeliveryState
    attempts: int
    next_attempt_at: float
    delivered_at: float | None
    last_error: str | None


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """An alert and where its delivery stands, as the portal lists them."""

    event: AlertEvent
    state: AlertState
