"""Building budget alerts from the ``alerts`` section: the outbox, the notifier the limiter reports to,
and the sender with its webhooks' secrets (read from the environment, never from the file)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from maas_gateway.alerts.backoff import RetrySchedule
from maas_gateway.alerts.metrics import AlertMetrics
from maas_gateway.alerts.notifier import AlertNotifier
from maas_gateway.alerts.outbox import AlertOutbox, InMemoryAlertOutbox
from maas_gateway.alerts.retention import OutboxRetention
from maas_gateway.alerts.sender import AlertSender, WebhookTarget
from maas_gateway.alerts.thresholds import ThresholdOverride, ThresholdPolicy
from maas_gateway.alerts.webhook_client import WebhookClient
from maas_gateway.config.alerts_settings import AlertsSettings, WebhookSettings
from maas_gateway.config.durations import format_duration
from maas_gateway.database import Database
from maas_gateway.metrics import GatewayMetrics

__all__ = ["MIN_SECRET_LENGTH", "Alerts", "build_alerts", "threshold_policy", "webhook_targets"]

MIN_SECRET_LENGTH = 16


@dataclass(frozen=True, slots=True)
class Alerts:
    outbox: AlertOutbox
    notifier: AlertNotifier
    sender: AlertSender
    client: WebhookClient
    retention: OutboxRetention


def threshold_policy(settings: AlertsSettings) -> ThresholdPolicy:
    overrides = tuple(
        ThresholdOverride(
            override.tier,
            tuple(override.thresholds),
            unit=override.unit,
            window=None if override.window is None else format_duration(override.window),
        )
        for override in settings.overrides
    )
    return ThresholdPolicy(tuple(settings.thresholds), overrides)


def webhook_targets(settings: AlertsSettings) -> dict[str, WebhookTarget]:
    """Each webhook with its secret; a secret that is not set, or too short, stops the start here."""
    return {webhook.name: _target(index, webhook) for index, webhook in enumerate(settings.webhooks)}


def _target(index: int, webhook: WebhookSettings) -> WebhookTarget:
    secret = os.environ.get(webhook.secret_env, "")
    where = f"alerts.webhooks.{index} ('{webhook.name}')"
    if not secret:
        raise ValueError(
            f"{where}: the environment variable {webhook.secret_env}, which should hold the webhook's "
            "signing secret, is not set; set it (the same secret the receiver verifies with) and start again."
        )
    if len(secret) < MIN_SECRET_LENGTH:
        raise ValueError(
            f"{where}: the secret in {webhook.secret_env} has {len(secret)} characters; a signing secret "
            f"needs at least {MIN_SECRET_LENGTH}."
        )
    return WebhookTarget(webhook.name, webhook.url, secret.encode(), webhook.timeout)


def build_alerts(
    settings: AlertsSettings, database: Database | None, metrics: GatewayMetrics | None
) -> Alerts | None:
    """The alerts, or ``None`` when they are off. Without a database the outbox is in memory: an alert
    then fires once per process, and one not yet delivered is lost with the process."""
    if not settings.enabled:
        return None
    targets = webhook_targets(settings)  # first: it may refuse
    outbox: AlertOutbox
    if database is None:
        outbox = InMemoryAlertOutbox()
    else:
        from maas_gateway.alerts.sql_outbox import SqlAlertOutbox

        outbox = SqlAlertOutbox(database)
    alert_metrics = None if metrics is None else AlertMetrics(metrics.registry)
    client = WebhookClient()
    schedule = RetrySchedule(
        initial=settings.backoff_initial,
        multiplier=settings.backoff_multiplier,
        maximum=settings.backoff_max,
        jitter=settings.jitter,
        max_attempts=settings.max_attempts,
    )
    sender = AlertSender(
        outbox,
        targets,
        client.post,
        schedule,
        lease=settings.lease,
        poll_interval=settings.poll_interval,
        metrics=alert_metrics,
    )
    notifier = AlertNotifier(
        outbox,
        threshold_policy(settings),
        list(targets),
        metrics=alert_metrics,
        stored=sender.wake,
        retry_interval=settings.poll_interval,
    )
    retention = OutboxRetention(outbox, lambda: settings.outbox_retention)
    return Alerts(outbox, notifier, sender, client, retention)
