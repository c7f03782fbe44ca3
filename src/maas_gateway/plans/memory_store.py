"""Plan change requests held in the process, for demos and tests (lost at exit)."""

from __future__ import annotations

from dataclasses import replace

from maas_gateway.plans.requests import PlanRequest, PlanRequestStatus

__all__ = ["InMemoryPlanRequestStore"]


class InMemoryPlanRequestStore:
    def __init__(self) -> None:
        self._requests: dict[str, PlanRequest] = {}  # in creation order

    async def create(self, request: PlanRequest) -> PlanRequest | None:
        if any(r.user == request.user and r.status == "pending" for r in self._requests.values()):
            return None
        if request.request_id in self._requests:
            raise ValueError(f"The plan request {request.request_id} exists already.")
        self._requests[request.request_id] = request
        return request

    async def get(self, request_id: str) -> PlanRequest | None:
        return self._requests.get(request_id)

    async def list(
        self, *, user: str | None, status: PlanRequestStatus | None, offset: int, limit: int
    ) -> tuple[list[PlanRequest], int]:
        found = [
            r
            for r in reversed(self._requests.values())
            if (user is None or r.user == user) and (status is None or r.status == status)
        ]
        return found[offset : offset + limit], len(found)

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
        request = self._requests.get(request_id)
        if request is None or request.status != from_status:
            return None
        if to_status == "pending" and any(
            r.user == request.user and r.status == "pending" for r in self._requests.values()
        ):
            return None  # reopening must not make a second pending request
        moved = replace(request, status=to_status, decided_by=by, reason=reason, decided_at=at)
        self._requests[request_id] = moved
        return moved
