"""Settings for spreading a model's requests over its backends: weights, health, retries, balancing.

A model's backend is a URL or ``{url, weight, max_in_flight}``. Health checks and outlier detection are
set for every model at the top of the file and may be replaced whole for one model; the retry budget and the
queue-aware scraping are set once. What they do is in docs/routing.md; ``application/policies.py`` turns
them into the plain values of the ``balancing`` units.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AnyHttpUrl, Field, model_validator

from maas_gateway.config.base import Strict
from maas_gateway.config.durations import Duration

__all__ = [
    "BackendConfig",
    "BalancingPolicy",
    "HealthCheckSettings",
    "OutlierDetectionSettings",
    "PrefixAffinitySettings",
    "QueueAwareSettings",
    "RetryBudgetSettings",
]

BalancingPolicy = Literal["least-outstanding", "round-robin", "queue-aware"]


class BackendConfig(Strict):
    url: AnyHttpUrl = Field(description="The backend's base URL, as in the plain form.")
    weight: float = Field(
        default=1.0, gt=0, le=1000, description="Its share of the requests relative to the others."
    )
    max_in_flight: int | None = Field(
        default=None,
        ge=1,
        description="The most requests this backend is sent at once by each gateway process; "
        "when all of a model's backends are at theirs, requests wait.",
    )


class HealthCheckSettings(Strict):
    enabled: bool = Field(default=True, description="Ask every backend's `/health` in the background.")
    interval: Duration = Field(default=2.0, description="Time between two checks of a backend.")
    timeout: Duration = Field(default=1.0, description="Longest wait for one check's answer.")
    healthy_threshold: int = Field(
        default=2, ge=1, description="Passed checks in a row that bring an unhealthy backend back."
    )
    unhealthy_threshold: int = Field(
        default=3, ge=1, description="Failed checks in a row that take a healthy backend out."
    )


class OutlierDetectionSettings(Strict):
    consecutive_failures: int = Field(
        default=5, ge=1, description="Failed requests in a row (no connection, 5xx) that eject a backend."
    )
    base_ejection: Duration = Field(default=10.0, description="How long the first ejection lasts.")
    max_ejection: Duration = Field(
        default=300.0, description="The longest ejection; each one in a row lasts twice the last."
    )
    recovery_successes: int = Field(
        default=5, ge=1, description="Answered requests in a row after which past ejections are forgotten."
    )

    @model_validator(mode="after")
    def _base_within_max(self) -> OutlierDetectionSettings:
        if self.base_ejection > self.max_ejection:
            raise ValueError("`base_ejection` must not be longer than `max_ejection`.")
        return self


class RetryBudgetSettings(Strict):
    ratio: float = Field(
        default=0.2, ge=0, le=1, description="Retries allowed as a share of a model's recent requests."
    )
    min_retries: int = Field(default=3, ge=0, description="Retries allowed per window however quiet it is.")
    window: Duration = Field(default=10.0, description="How far back requests and retries are counted.")


class QueueAwareSettings(Strict):
    scrape_interval: Duration = Field(
        default=0.25, description="Time between two reads of a backend's `/metrics` (100-500 ms)."
    )
    scrape_timeout: Duration = Field(default=1.0, description="Longest wait for one read.")
    stale_after: Duration = Field(
        default=1.0, description="A load older than this is not trusted: the pick is least-outstanding."
    )
    waiting_cost: float = Field(
        default=4.0, ge=0, description="A queued request counts as this many running ones."
    )
    kv_cost: float = Field(
        default=10.0, ge=0, description="A full KV cache counts as this many running requests."
    )


class PrefixAffinitySettings(Strict):
    margin: float = Field(
        default=2.0,
        ge=0,
        description="How much busier (in requests) a prompt's own backend may be and still be chosen.",
    )
    prefix_chars: int = Field(
        default=512,
        ge=1,
        le=100_000,
        description="How much of the system prompt (or of the first message) is the affinity key.",
    )
