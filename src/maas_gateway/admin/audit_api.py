"""``GET /admin/audit``: the audit log of administrators' actions, newest first, for administrators."""

# No `from __future__ import annotations`: FastAPI reads these annotations as objects.

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from maas_gateway.admin.schemas import AuditEntryOut, AuditList
from maas_gateway.admin.services import AdminServices
from maas_gateway.admin.usage import parse_time
from maas_gateway.audit.entries import AuditQuery

__all__ = ["audit_router"]

Text = Annotated[str | None, Query(max_length=300)]


def audit_router(services: AdminServices, admin: Callable[..., Awaitable[None]]) -> APIRouter:
    router = APIRouter(dependencies=[Depends(admin)])

    @router.get("/admin/audit", tags=["admin: audit"])
    async def audit(
        actor: Annotated[str | None, Query(max_length=200, description="`admin key` or a user name.")] = None,
        action: Annotated[str | None, Query(max_length=100, description="Such as key.revoke.")] = None,
        subject: Annotated[
            str | None, Query(max_length=300, description="A key id, user or request id.")
        ] = None,
        since: Annotated[str | None, Query(description="Inclusive: Unix seconds or ISO 8601 (UTC).")] = None,
        until: Annotated[str | None, Query(description="Exclusive: Unix seconds or ISO 8601 (UTC).")] = None,
        before: Annotated[
            int | None, Query(ge=1, le=2**62, description="The cursor: `next_cursor` of the previous page.")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> AuditList:
        """Every administrator's action (who, what, on which subject, when, from where), newest first;
        page with `before` set to the previous page's `next_cursor`."""
        query = AuditQuery(
            actor=actor,
            action=action,
            subject=subject,
            since=parse_time(since, "since", 0.0) if since else None,
            until=parse_time(until, "until", 0.0) if until else None,
            before=before,
            limit=limit,
        )
        page = await services.audit.search(query)
        data = [AuditEntryOut(**entry.as_dict()) for entry in page.entries]
        return AuditList(data=data, next_cursor=page.next_cursor)

    return router
