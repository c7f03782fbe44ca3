"""The JSON body a webhook receives for an alert (its schema is in docs/alerts.md)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

from maas_gateway.alerts.events import AlertEvent

__all__ = ["PAYLOAD_TYPE", "alert_payload", "sample_event"]

PAYLOAD_TYPE = "maas.budget.threshold_reached"


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def alert_payload(event: AlertEvent, *, test: bool = False) -> bytes:
    """The body for ``event``; ``test`` marks the sample `maas alerts test` sends."""
    body: dict[str, Any] = {
        "type": PAYLOAD_TYPE,
        "id": event.alert_id,
        "test": test,
        "created_at": _iso(event.created_at),
        "user": event.user,
        "tier": event.tier,
        "limit": {"key": event.limit_key, "limit": event.limit, "unit": event.unit, "window": event.window},
        "window": {"start": _iso(event.window_start), "end": _iso(event.window_end)},
        "threshold_percent": event.threshold,
        "used": event.used,
        "used_percent": round(event.used * 100 / event.limit, 2) if event.limit else None,
    }
    return orjson.dumps(body)


def sample_event(webhook: str, now: float) -> AlertEvent:
    """An alert that could have fired now: 80 % of a 1,000-token hourly budget of the user ``example``."""
    start = int(now // 3600 * 3600)
    return AlertEvent(
        alert_id=str(uuid.uuid4()),
        webhook=webhook,
        user="example",
        tier="free",
        limit_key="tokens/1h/*",
        limit=1000,
        unit="tokens",
        window="1h",
        window_start=start,
        window_end=start + 3600,
        threshold=80,
        used=800,
        created_at=now,
    )
