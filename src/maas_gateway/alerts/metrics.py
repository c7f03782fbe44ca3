"""The alerts' Prometheus counters, on the gateway's registry (merged across workers like the rest).

Labelled by webhook and threshold only, never by user: an alert's user is in its log line and its body.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

__all__ = ["AlertMetrics"]


class AlertMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self._fired = Counter(
            "maas_alerts_fired",
            "Budget alerts fired (stored in the outbox by this replica: each threshold once per window).",
            ["webhook", "threshold"],
            registry=registry,
        )
        self._delivered = Counter(
            "maas_alerts_delivered", "Budget alerts the webhook accepted.", ["webhook"], registry=registry
        )
        self._failed = Counter(
            "maas_alerts_failed",
            "Budget alerts given up after their last attempt, or refused by the webhook.",
            ["webhook"],
            registry=registry,
        )
        self._attempts_failed = Counter(
            "maas_alert_attempts_failed",
            "Deliveries of budget alerts that failed and will be tried again (or given up).",
            ["webhook"],
            registry=registry,
        )

    def fired(self, webhook: str, threshold: int) -> None:
        self._fired.labels(webhook, str(threshold)).inc()

    def delivered(self, webhook: str) -> None:
        self._delivered.labels(webhook).inc()

    def attempt_failed(self, webhook: str) -> None:
        self._attempts_failed.labels(webhook).inc()

    def failed(self, webhook: str) -> None:
        self._failed.labels(webhook).inc()
