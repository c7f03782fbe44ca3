"""From a request's ``Demand`` to the storage call that acquires its lease: which sets, budget and lines."""

from __future__ import annotations

from maas_gateway.capacity.base import AcquireRequest, SlotClaim, TokenBudget
from maas_gateway.capacity.keys import model_slots, model_tokens, user_slots, waiting
from maas_gateway.capacity.rules import Demand

__all__ = ["acquire_request", "registers", "slot_keys"]

_REGISTRATION_POLLS = 4  # a registration lapses after this many polls without an offer renewing it
_SHORTEST_REGISTRATION = 0.25  # seconds: a replica busy for a moment must not lose its tier's place


def slot_keys(demand: Demand) -> tuple[str, ...]:
    """The slot sets the request's lease is in: its user's first, then its model's."""
    keys = []
    if demand.user_limit is not None:
        keys.append(user_slots(demand.user))
    if demand.model_limit is not None:
        keys.append(model_slots(demand.model))
    return tuple(keys)


def registers(demand: Demand) -> bool:
    """Whether a waiting request says so in its tier's waiting set: the worst rank outranks nobody."""
    return demand.rank < demand.ranks - 1


def acquire_request(demand: Demand, lease: str, now: float, *, register: bool) -> AcquireRequest:
    """The storage call for one attempt; ``register``: the request will wait if refused for capacity."""
    slots = []
    if demand.user_limit is not None:
        slots.append(SlotClaim(user_slots(demand.user), demand.user_limit, quota=True))
    if demand.model_limit is not None:
        slots.append(SlotClaim(model_slots(demand.model), demand.model_limit, quota=False))
    budget = None
    if demand.tokens_per_minute is not None:
        budget = TokenBudget(model_tokens(demand.model, now), demand.tokens_per_minute)
    registration = max(_SHORTEST_REGISTRATION, _REGISTRATION_POLLS * demand.poll_interval)
    return AcquireRequest(
        lease=lease,
        slots=tuple(slots),
        expires_at=now + demand.lease_ttl,
        budget=budget,
        outranked_by=tuple(waiting(demand.model, rank) for rank in range(demand.rank)),
        waiting=waiting(demand.model, demand.rank) if register and registers(demand) else None,
        registered_until=now + registration,
    )
