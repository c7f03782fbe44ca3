"""Where capacity leases live: the interface every storage implements, and the values it takes.

A lease is one request holding a slot in one or more slot sets (its model's, its user's) until it is
released, or until its expiry passes: the holder renews it while the request runs, so the slots of a
replica that dies come back within one lease time. Acquiring checks every slot set, the model's token
budget for the minute and the better tiers' waiting sets, and takes every slot, in one atomic step, so
that concurrent requests on any number of replicas never hold more slots than a set allows.

Times are seconds on the wall clock (``time.time()``) of the caller, as for the limit windows: replicas
agree on them to within their clocks' skew, which is small next to a lease time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

__all__ = [
    "AcquireRequest",
    "AcquireResult",
    "BudgetCharge",
    "CapacityStorage",
    "HeldLease",
    "Refusal",
    "SlotClaim",
    "SlotKind",
    "TokenBudget",
]

# What a full slot set means: the user's own allowance is used ("quota", answered 429 in the end), the
# share of the model their tier may hold is ("share"; other tiers may still pass), or all of the model's
# slots are held ("capacity").
SlotKind = Literal["quota", "share", "capacity"]
# Why a lease was not granted: a full slot set (its kind), the model's tokens for the minute are spent
# ("budget"), or a request of a better tier is waiting for the model somewhere ("outranked"; the slot is
# left to that request). Only the last three mean the model itself has nothing for the request.
Refusal = Literal["quota", "share", "capacity", "budget", "outranked"]


@dataclass(frozen=True, slots=True)
class SlotClaim:
    """One slot set a request needs a slot of: at most ``limit`` leases at once."""

    key: str
    limit: int
    kind: SlotKind


@dataclass(frozen=True, slots=True)
class TokenBudget:
    """A model's token counter for the current minute; a request passes while it is below ``limit``."""

    key: str
    limit: int


@dataclass(frozen=True, slots=True)
class AcquireRequest:
    """Everything one attempt to acquire a lease checks and changes.

    ``outranked_by`` are the waiting sets of better tiers: a live registration in any of them refuses the
    attempt. ``waiting`` is the set this request registers in (until ``registered_until``) when it is
    refused because the model has nothing for it ("capacity", "budget", "outranked") and will wait; a
    refusal on its user's or tier's own allowance, or success, takes it out.
    """

    lease: str
    slots: tuple[SlotClaim, ...]
    expires_at: float
    budget: TokenBudget | None = None
    outranked_by: tuple[str, ...] = ()
    waiting: str | None = None
    registered_until: float = 0.0


@dataclass(frozen=True, slots=True)
class AcquireResult:
    acquired: bool
    refusal: Refusal | None
    in_use: tuple[int, ...]  # live leases in each slot set: after the acquisition, or as found


@dataclass(frozen=True, slots=True)
class HeldLease:
    """A lease to renew: it is to expire at ``expires_at`` in each of its slot sets."""

    lease: str
    keys: tuple[str, ...]
    expires_at: float


@dataclass(frozen=True, slots=True)
class BudgetCharge:
    """Tokens a finished request used, added to its model's counter (created to live ``ttl`` seconds)."""

    key: str
    amount: int
    ttl: float


class CapacityStorage(Protocol):
    async def acquire(self, request: AcquireRequest, now: float) -> AcquireResult:
        """Atomically purge expired leases and registrations, check every slot set, the budget and the
        better tiers' waiting sets in that order, and take a slot in every set if all pass."""
        ...

    async def release(self, lease: str, keys: Sequence[str], charge: BudgetCharge | None, now: float) -> None:
        """Give the lease's slots back and charge its tokens; releasing a lease twice changes nothing."""
        ...

    async def renew(self, leases: Sequence[HeldLease], now: float) -> tuple[str, ...]:
        """Move each lease's expiry on; return the leases that had already expired or were released
        (they are not brought back: their slots may have been taken since)."""
        ...

    async def withdraw(self, waiting: str, lease: str) -> None:
        """Take a registration out of a waiting set (the request stopped waiting)."""
        ...

    async def ping(self) -> bool: ...

    async def aclose(self) -> None: ...
