"""From a request's ``Demand`` to the storage call that acquires its lease: which sets, budget and lines."""

from __future__ import annotations

from maas_gateway.capacity.base import AcquireRequest, Refusal, SlotClaim, TokenBudget
from maas_gateway.capacity.keys import model_slots, model_tokens, tier_slots, user_slots, waiting
from maas_gateway.capacity.rules import Demand

__all__ = ["acquire_request", "model_has_nothing", "registers"]

_REGISTRATION_POLLS = 4  # a registration lapses after this many polls without an offer renewing it
_SHORTEST_REGISTRATION = 0.25  # seconds: a replica busy for a moment must not lose its tier's place


def _claims(demand: Demand) -> tuple[SlotClaim, ...]:
    """The slot sets the request needs a slot of: its user's, its tier's share, then its model's."""
    claims = []
    if demand.user_limit is not None:
        claims.append(SlotClaim(user_slots(demand.user), demand.user_limit, "quota"))
    if demand.tier_limit is not None:
        claims.append(SlotClaim(tier_slots(demand.model, demand.tier), demand.tier_limit, "share"))
    if demand.model_limit is not None:
        claims.append(SlotClaim(model_slots(demand.model), demand.model_limit, "capacity"))
    return tuple(claims)


def model_has_nothing(refusal: Refusal) -> bool:
    """Whether nobody of the request's rank or worse can have a slot of the model now: the request then
    waits registered, and a round of offers ends. A full user allowance or tier share is not that."""
    return refusal in ("capacity", "budget", "outranked")


def registers(demand: Demand) -> bool:
    """Whether a waiting request says so in its tier's waiting set: the worst rank outranks nobody."""
    return demand.rank < demand.ranks - 1


def acquire_request(demand: Demand, lease: str, now: float, *, register: bool) -> AcquireRequest:
    """The storage call for one attempt; ``register``: the request will wait if refused for capacity."""
    budget = None
    if demand.tokens_per_minute is not None:
        budget = TokenBudget(model_tokens(demand.model, now), demand.tokens_per_minute)
    registration = max(_SHORTEST_REGISTRATION, _REGISTRATION_POLLS * demand.poll_interval)
    return AcquireRequest(
        lease=lease,
        slots=_claims(demand),
        expires_at=now + demand.lease_ttl,
        budget=budget,
        outranked_by=tuple(waiting(demand.model, rank) for rank in range(demand.rank)),
        waiting=waiting(demand.model, demand.rank) if register and registers(demand) else None,
        registered_until=now + registration,
    )
