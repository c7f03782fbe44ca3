"""The names of the slot sets, token budgets and waiting sets, the same in every storage and replica.

The kind comes first and a model name or a minute last, so no two of them can be spelled alike: a user's
set is ``slots:user:<user>`` whatever the user's name holds, minutes and ranks are whole numbers after
the last ``:``, and a tier's set puts a separator no model name holds between model and tier.
"""

from __future__ import annotations

__all__ = ["MINUTE", "minute_ends_in", "model_slots", "model_tokens", "tier_slots", "user_slots", "waiting"]

MINUTE = 60.0  # token budgets are per minute, aligned to the epoch like the limit windows


def model_slots(model: str) -> str:
    return f"slots:model:{model}"


def tier_slots(model: str, tier: str) -> str:
    """The slots of ``model`` held by requests of ``tier`` (model names never hold the separator)."""
    return f"slots:tier:{model}\x1f{tier}"


def user_slots(user: str) -> str:
    return f"slots:user:{user}"


def model_tokens(model: str, now: float) -> str:
    """The counter of the model's tokens in the minute ``now`` falls in."""
    return f"tokens:{model}:{int(now // MINUTE)}"


def minute_ends_in(now: float) -> float:
    return MINUTE - now % MINUTE


def waiting(model: str, rank: int) -> str:
    """The set of requests of tier rank ``rank`` waiting for a slot of ``model`` on any replica."""
    return f"waiting:{model}:{rank}"
