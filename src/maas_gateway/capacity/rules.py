"""Which caps apply to a request: the model's, the user's, and where the user's tier waits in line.

Plain values, converted from the configuration in one place (``application/policies.py``); immutable,
rebuilt on reload. ``demand`` is all the gate needs to know about one request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["CapacityRules", "Demand", "ModelCaps", "QueueSettings"]


@dataclass(frozen=True, slots=True)
class QueueSettings:
    max_queue: int  # requests that may wait for the model in one process; 0: refuse at once
    timeout: float  # longest a request waits, in seconds


@dataclass(frozen=True, slots=True)
class ModelCaps:
    """What all users together may use of one model, across every replica."""

    max_in_flight: int | None = None
    tokens_per_minute: int | None = None
    queue: QueueSettings | None = None  # None: the gateway-wide queue settings


@dataclass(frozen=True, slots=True)
class Demand:
    """One request's claim on capacity: its caps, its place in line, and how long it may wait."""

    model: str
    user: str
    tier: str
    rank: int  # 0 is served first
    ranks: int  # how many ranks there are (a request of the last rank outranks nobody)
    model_limit: int | None
    tier_limit: int | None  # the slots of the model the request's tier may hold together
    user_limit: int | None
    tokens_per_minute: int | None
    queue: QueueSettings
    lease_ttl: float
    poll_interval: float


class CapacityRules:
    """The caps of every model, the concurrency of every tier and overriding user, and the tier order.

    ``tier_order`` lists tiers best first; the other ``tiers`` share the rank after the last listed one.
    ``tier_shares`` are the shares (0-1] of each model's ``max_in_flight`` that a tier's requests may
    hold together, so that a flood of one tier leaves slots to the others.
    """

    def __init__(
        self,
        *,
        models: Mapping[str, ModelCaps],
        tiers: Sequence[str] = (),
        tier_order: Sequence[str] = (),
        tier_concurrency: Mapping[str, int] | None = None,
        tier_shares: Mapping[str, float] | None = None,
        user_concurrency: Mapping[str, int] | None = None,
        queue: QueueSettings,
        lease_ttl: float,
        poll_interval: float,
    ) -> None:
        self._models = {
            name: caps for name, caps in models.items() if caps.max_in_flight or caps.tokens_per_minute
        }
        self._ranks = {tier: rank for rank, tier in enumerate(tier_order)}
        self._unranked = len(self._ranks)
        # A request of the worst rank outranks nobody, so it need not say that it waits.
        self._count = self._unranked + (1 if set(tiers) - set(self._ranks) or not self._ranks else 0)
        self._tiers = dict(tier_concurrency or {})
        self._shares = dict(tier_shares or {})
        self._users = dict(user_concurrency or {})
        self._queue = queue
        self._lease_ttl = lease_ttl
        self._poll_interval = poll_interval

    @property
    def active(self) -> bool:
        """Whether any request can be capped at all; when not, requests skip the gate entirely."""
        return bool(self._models or self._tiers or self._users)

    def demand(self, user: str, tier: str, model: str) -> Demand | None:
        """The request's claim, or ``None`` when neither its model nor its user is capped."""
        caps = self._models.get(model)
        user_limit = self._users.get(user, self._tiers.get(tier))
        if caps is None and user_limit is None:
            return None
        rank = self._ranks.get(tier, self._unranked)
        model_limit = caps.max_in_flight if caps else None
        share = self._shares.get(tier)
        tier_limit = None
        if model_limit is not None and share is not None and share < 1:
            tier_limit = max(1, int(model_limit * share))  # at least one: a share never shuts a tier out
        return Demand(
            model=model,
            user=user,
            tier=tier,
            rank=rank,
            ranks=self._count,
            model_limit=model_limit,
            tier_limit=tier_limit,
            user_limit=user_limit,
            tokens_per_minute=caps.tokens_per_minute if caps else None,
            queue=(caps.queue if caps and caps.queue else self._queue),
            lease_ttl=self._lease_ttl,
            poll_interval=self._poll_interval,
        )
