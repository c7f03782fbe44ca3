"""Plan change requests as users and administrators see them: the rules, over a ``PlanRequestStore``.

A user asks for a tier that exists and differs from the one they have; one request may be pending per
user (a second is refused with 409 until the first is decided or withdrawn, so an administrator never
approves a request the user has since replaced). Another user's request id is 404, never 403. Deciding
is a compare-and-set on the status, so a request is decided once however many administrators race. The
tier change itself is not here: ``admin.actions.AdminActions`` applies it through the users' own update
path, which every replica hears.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection

from maas_gateway.errors import ConflictError, InvalidRequestError, NotFoundError
from maas_gateway.plans.requests import PlanRequest, PlanRequestStatus, PlanRequestStore, new_request_id

__all__ = ["PlanRequestService"]

_NOTE_LIMIT = 2000


class PlanRequestService:
    def __init__(
        self,
        store: PlanRequestStore,
        tiers: Callable[[], Collection[str]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self._tiers = tiers  # the tiers configured now (a reload may change them)
        self._clock = clock

    def check_tier(self, tier: str) -> str:
        tiers = self._tiers()
        if tier not in tiers:
            raise InvalidRequestError(
                f"The tier '{tier}' does not exist; choose from {', '.join(tiers)}.",
                code="unknown_tier",
                param="tier",
            )
        return tier

    async def request(self, user: str, *, current_tier: str, tier: str, note: str | None) -> PlanRequest:
        """A user's request to move from ``current_tier`` to ``tier``."""
        self.check_tier(tier)
        if tier == current_tier:
            raise InvalidRequestError(
                f"You are already on the tier '{tier}'; ask for another one.",
                code="tier_unchanged",
                param="tier",
            )
        if note is not None and len(note) > _NOTE_LIMIT:
            raise InvalidRequestError(f"`note` may be at most {_NOTE_LIMIT} characters long.", param="note")
        request = PlanRequest(new_request_id(), user, current_tier, tier, note, "pending", self._clock())
        stored = await self.store.create(request)
        if stored is None:
            raise ConflictError(
                "You already have a pending plan request; wait for an administrator's decision or withdraw "
                "it (DELETE /v1/plan-requests/{id}) first.",
                code="plan_request_pending",
            )
        return stored

    async def owned(self, request_id: str, owner: str | None) -> PlanRequest:
        """The request, if ``owner`` (``None``: an administrator) may see it; 404 otherwise."""
        request = await self.store.get(request_id)
        if request is None or (owner is not None and request.user != owner):
            raise NotFoundError(f"There is no plan request '{request_id}'.", code="plan_request_not_found")
        return request

    async def withdraw(self, user: str, request_id: str) -> PlanRequest:
        """The user takes back their own pending request."""
        await self.owned(request_id, user)
        return await self.decide(request_id, "withdrawn", by=user, reason=None)

    async def decide(
        self, request_id: str, status: PlanRequestStatus, *, by: str, reason: str | None
    ) -> PlanRequest:
        """Move a pending request to ``status``; 404 if unknown, 409 if it was decided already (also when
        another administrator decided it a moment ago)."""
        decided = await self.store.transition(
            request_id, from_status="pending", to_status=status, by=by, reason=reason, at=self._clock()
        )
        if decided is not None:
            return decided
        current = await self.owned(request_id, None)
        raise ConflictError(
            f"The plan request '{request_id}' is {current.status} already; it can be decided only once.",
            code="plan_request_decided",
        )

    async def reopen(self, request_id: str, status: PlanRequestStatus) -> None:
        """Undo a decision whose effect could not be applied, so it can be taken again."""
        await self.store.transition(
            request_id, from_status=status, to_status="pending", by=None, reason=None, at=None
        )

    async def listing(
        self, *, user: str | None, status: PlanRequestStatus | None, page: int, page_size: int
    ) -> tuple[list[PlanRequest], int]:
        return await self.store.list(user=user, status=status, offset=(page - 1) * page_size, limit=page_size)
