"""Plan change requests over HTTP: users ask with their own credential, administrators decide.

A user sees only their own requests; another user's request id is 404, never 403. Approval changes the
user's tier at once, on every replica (``AdminActions.approve_plan_request``).
"""

# No `from __future__ import annotations`: FastAPI reads these annotations as objects.

from collections.abc import Awaitable, Callable
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from maas_gateway.admin.schemas import PlanRequestCreate, PlanRequestDeny, PlanRequestList, PlanRequestOut
from maas_gateway.admin.services import AdminServices
from maas_gateway.audit.entries import Actor
from maas_gateway.auth import Identity

__all__ = ["plans_router"]

Status = Annotated[
    Literal["pending", "approved", "denied", "withdrawn"] | None, Query(description="Only this status.")
]
Page = Annotated[int, Query(ge=1, le=1_000_000)]
PageSize = Annotated[int, Query(ge=1, le=500)]


def plans_router(
    services: AdminServices,
    admin: Callable[..., Awaitable[None]],
    caller: Callable[..., Awaitable[Identity]],
    actor: Callable[..., Awaitable[Actor]],
) -> APIRouter:
    router = APIRouter()
    plans = services.actions.plans

    async def listing(user: str | None, status: str | None, page: int, page_size: int) -> PlanRequestList:
        found, total = await plans.listing(
            user=user,
            status=status,  # type: ignore[arg-type]  # FastAPI checked it against the same Literal
            page=page,
            page_size=page_size,
        )
        data = [PlanRequestOut.of(request) for request in found]
        return PlanRequestList(data=data, page=page, page_size=page_size, total=total)

    @router.post("/v1/plan-requests", status_code=201, tags=["self-service"])
    async def request_plan(
        identity: Annotated[Identity, Depends(caller)], body: PlanRequestCreate
    ) -> PlanRequestOut:
        """Ask for another tier; an administrator approves or denies. One request may be pending at a
        time (409 `plan_request_pending`): withdraw it to ask for something else."""
        request = await plans.request(
            identity.user, current_tier=identity.tier, tier=body.tier, note=body.note
        )
        return PlanRequestOut.of(request)

    @router.get("/v1/plan-requests", tags=["self-service"])
    async def own_requests(
        identity: Annotated[Identity, Depends(caller)],
        status: Status = None,
        page: Page = 1,
        page_size: PageSize = 50,
    ) -> PlanRequestList:
        """The caller's own plan requests, newest first."""
        return await listing(identity.user, status, page, page_size)

    @router.get("/v1/plan-requests/{request_id}", tags=["self-service"])
    async def own_request(identity: Annotated[Identity, Depends(caller)], request_id: str) -> PlanRequestOut:
        """One of the caller's plan requests; another user's is 404."""
        return PlanRequestOut.of(await plans.owned(request_id, identity.user))

    @router.delete("/v1/plan-requests/{request_id}", tags=["self-service"])
    async def withdraw(identity: Annotated[Identity, Depends(caller)], request_id: str) -> PlanRequestOut:
        """Withdraw one of the caller's pending requests (409 once it is decided)."""
        return PlanRequestOut.of(await plans.withdraw(identity.user, request_id))

    @router.get("/admin/plan-requests", dependencies=[Depends(admin)], tags=["admin: plan requests"])
    async def all_requests(
        status: Status = None,
        user: Annotated[str | None, Query(max_length=200, description="Only this user.")] = None,
        page: Page = 1,
        page_size: PageSize = 50,
    ) -> PlanRequestList:
        """Every user's plan requests, newest first; `status=pending` for those waiting."""
        return await listing(user, status, page, page_size)

    @router.post(
        "/admin/plan-requests/{request_id}/approve",
        dependencies=[Depends(admin)],
        tags=["admin: plan requests"],
    )
    async def approve(request_id: str, who: Annotated[Actor, Depends(actor)]) -> PlanRequestOut:
        """Approve a pending request: the user is on the new tier at once, on every replica. 409 when it
        was decided already (by another administrator too)."""
        return PlanRequestOut.of(await services.actions.approve_plan_request(who, request_id))

    @router.post(
        "/admin/plan-requests/{request_id}/deny", dependencies=[Depends(admin)], tags=["admin: plan requests"]
    )
    async def deny(
        request_id: str, who: Annotated[Actor, Depends(actor)], body: PlanRequestDeny | None = None
    ) -> PlanRequestOut:
        """Deny a pending request, with an optional reason the user sees. 409 when decided already."""
        reason = body.reason if body is not None else None
        return PlanRequestOut.of(await services.actions.deny_plan_request(who, request_id, reason))

    return router
