"""The ``alerts`` section: budget thresholds, the webhooks that hear of them, and how delivery retries.

Secrets never live in the file: each webhook names the environment variable holding its HMAC secret.
See docs/alerts.md.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from maas_gateway.config.base import Strict
from maas_gateway.config.durations import Duration

__all__ = ["AlertsSettings", "ThresholdOverrideSettings", "WebhookSettings"]

_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
_WEBHOOK_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"


def _thresholds_problem(thresholds: list[int]) -> str | None:
    if len(set(thresholds)) != len(thresholds):
        return "each threshold may be listed once"
    if any(not 1 <= threshold <= 1000 for threshold in thresholds):
        return "thresholds are percentages of the limit, from 1 to 1000"
    return None


class WebhookSettings(Strict):
    name: str = Field(
        default="default",
        pattern=_WEBHOOK_NAME,
        max_length=100,
        description="Names the webhook in logs, metrics and the outbox; each alert is sent once to each.",
    )
    url: str = Field(description="Where alerts are POSTed as JSON (`https://...`).")
    secret_env: str = Field(
        pattern=_ENV_NAME,
        description="The environment variable holding the HMAC-SHA256 secret the webhook signs with.",
    )
    timeout: Duration = Field(default=5.0, gt=0, le=60, description="Longest wait for the webhook's answer.")

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        if parts.username or parts.password:
            raise ValueError("must not carry credentials; the webhook verifies the signature instead")
        return url


class ThresholdOverrideSettings(Strict):
    tier: str = Field(description="The tier whose budgets get these thresholds.")
    unit: Literal["requests", "tokens", "prompt_tokens", "completion_tokens"] | None = Field(
        default=None, description="Only the tier's limits in this unit; omitted: every unit."
    )
    window: Duration | None = Field(
        default=None, description="Only the tier's limits with this window (`1d`); omitted: every window."
    )
    thresholds: list[int] = Field(
        description="Percentages of the limit; an empty list turns alerts off for these budgets."
    )

    @field_validator("thresholds")
    @classmethod
    def _valid_thresholds(cls, thresholds: list[int]) -> list[int]:
        if problem := _thresholds_problem(thresholds):
            raise ValueError(problem)
        return thresholds


class AlertsSettings(Strict):
    enabled: bool = Field(default=False, description="Send budget alerts (docs/alerts.md).")
    webhooks: list[WebhookSettings] = Field(default_factory=list)
    thresholds: list[int] = Field(
        default_factory=lambda: [50, 80, 90, 100],
        description="Percentages of each limit at which an alert fires, once per window.",
    )
    overrides: list[ThresholdOverrideSettings] = Field(
        default_factory=list, description="Other thresholds for some tiers' limits; the first match wins."
    )
    max_attempts: int = Field(
        default=10, ge=1, le=100, description="Deliveries tried before an alert is given up (and logged)."
    )
    backoff_initial: Duration = Field(default=1.0, gt=0, description="Wait after the first failure.")
    backoff_multiplier: float = Field(
        default=2.0, ge=1.0, le=10.0, description="Each wait is this many times the last."
    )
    backoff_max: Duration = Field(default=600.0, gt=0, description="Longest wait between two attempts.")
    jitter: float = Field(
        default=0.2, ge=0.0, le=1.0, description="Each wait is shortened by up to this fraction, at random."
    )
    poll_interval: Duration = Field(
        default=1.0, gt=0, le=60, description="How often each replica looks for alerts due to be sent."
    )
    lease: Duration = Field(
        default=60.0,
        ge=1.0,
        description="How long a replica holds an alert it is sending; a crashed replica's alerts are taken "
        "over when it ends. Must exceed every webhook's timeout.",
    )
    outbox_retention: Duration | None = Field(
        default=30 * 86400.0,
        ge=3600.0,
        description="How long delivered and given-up alerts are kept after their window ends; then they are "
        "purged (as often as `database.prune_interval`), and any later alert of such a window is refused, "
        "so none fires twice. null keeps them forever.",
    )

    @field_validator("thresholds")
    @classmethod
    def _valid_thresholds(cls, thresholds: list[int]) -> list[int]:
        if problem := _thresholds_problem(thresholds):
            raise ValueError(problem)
        return thresholds

    @model_validator(mode="after")
    def _consistent(self) -> AlertsSettings:
        if self.enabled and not self.webhooks:
            raise ValueError("alerts are enabled but no webhook is configured; add one under `webhooks`")
        names = [webhook.name for webhook in self.webhooks]
        if len(set(names)) != len(names):
            raise ValueError("two webhooks have the same name; give each its own `name`")
        for webhook in self.webhooks:
            if webhook.timeout >= self.lease:
                raise ValueError(
                    f"the webhook '{webhook.name}' may take {webhook.timeout:g} s, as long as the lease "
                    f"({self.lease:g} s): another replica could send the alert again meanwhile; "
                    "make `lease` longer than every timeout"
                )
        if self.backoff_max < self.backoff_initial:
            raise ValueError("backoff_max must be at least backoff_initial")
        return self
