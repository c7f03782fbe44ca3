"""Budget alerts: thresholds of each limit reached, fired once per window across replicas, delivered to
signed webhooks from an outbox (docs/alerts.md)."""

from maas_gateway.alerts.events import AlertEvent, AlertState, ClaimedAlert
from maas_gateway.alerts.outbox import AlertOutbox, InMemoryAlertOutbox
from maas_gateway.alerts.thresholds import (
    DEFAULT_THRESHOLDS,
    ThresholdOverride,
    ThresholdPolicy,
    crossed_thresholds,
)

__all__ = [
    "DEFAULT_THRESHOLDS",
    "AlertEvent",
    "AlertOutbox",
    "AlertState",
    "ClaimedAlert",
    "InMemoryAlertOutbox",
    "ThresholdOverride",
    "ThresholdPolicy",
    "crossed_thresholds",
]
