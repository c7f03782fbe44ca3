"""Plan change requests: the records and the interface every store keeps.

Two implementations keep the same contract (``tests/test_plan_request_store_contract.py``): in memory and
SQL. The store enforces the two rules that must hold however many replicas and administrators act at once:

- **one pending request per user**: a second ``create`` while one is pending returns ``None`` (the caller
  refuses it with 409; the user withdraws the pending one first). On SQL a partial unique index decides,
  so two replicas creating at once cannot both succeed.
- **a decision is taken once**: ``transition`` moves a request from one status to another only if it is
  still in the first (compare-and-set); of two administrators approving and denying at once, exactly one
  gets the request back, the other ``None``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Literal, Protocol

__all__ = ["PlanRequest", "PlanRequestStatus", "PlanRequestStore", "new_request_id"]

PlanRequestStatus = Literal["pending", "approved", "denied", "withdrawn"]


def new_request_id() -> str:
    """A request id that cannot be guessed from another one (``pr_`` and 16 random characters)."""
    return f"pr_{secrets.token_hex(8)}"


@dataclass(frozen=True, slots=True)
class PlanRequest:
    request_id: str
    user: str
    from_tier: str  # the tier the user had when asking
    tier: str  # the tier asked for
    note: str | None
    status: PlanRequestStatus
    created_at: float
    decided_at: float | None = None
    decided_by: str | None = None  # the administrator (or, for a withdrawal, the user)
    reason: str | None = None  # why it was denied, if the administrator said


class PlanRequestStore(Protocol):
    async def create(self, request: PlanRequest) -> PlanRequest | None:
        """Store a pending request; ``None`` when the user already has one pending (nothing stored)."""
        ...

    async def get(self, request_id: str) -> PlanRequest | None: ...

    async def list(
        self, *, user: str | None, status: PlanRequestStatus | None, offset: int, limit: int
    ) -> tuple[list[PlanRequest], int]:
        """Requests newest first, optionally of one user and in one status; and how many match."""
        ...

    async def transition(
        self,
        request_id: str,
        *,
        from_status: PlanRequestStatus,
        to_status: PlanRequestStatus,
        by: str | None,
        reason: str | None,
        at: float | None,
    ) -> PlanRequest | None:
        """Move the request to ``to_status`` (recording who, why and when) only if it is ``from_status``
        now, atomically; the request as stored after the move, or ``None`` when it was not in
        ``from_status`` (or does not exist)."""
        ...
