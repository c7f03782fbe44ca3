"""``GET /admin/usage/reconcile``: the ledger's tokens against each backend's own counters, for admins."""

# No `from __future__ import annotations`: FastAPI reads these annotations as objects.

import time
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from maas_gateway.admin.services import AdminServices
from maas_gateway.admin.usage import parse_time
from maas_gateway.errors import InvalidRequestError
from maas_gateway.metering.reconcile import DRIFT_WARNING

__all__ = ["reconcile_router"]

_DEFAULT_PERIOD = 86400.0


def reconcile_router(services: AdminServices, admin: Callable[..., Awaitable[None]]) -> APIRouter:
    router = APIRouter(dependencies=[Depends(admin)])

    @router.get("/admin/usage/reconcile", tags=["usage"])
    async def reconcile(
        since: Annotated[
            str | None, Query(description="Start: ISO 8601 or Unix seconds (default: a day ago).")
        ] = None,
        until: Annotated[
            str | None, Query(description="End: ISO 8601 or Unix seconds (default: now).")
        ] = None,
    ) -> JSONResponse:
        """Per backend and model: the ledger's tokens and the backend's own counters over the period, their
        drift, and whether it is over the 1 % warning."""
        end = parse_time(until, "until", time.time())
        start = parse_time(since, "since", end - _DEFAULT_PERIOD)
        if start >= end:
            raise InvalidRequestError("`since` must be earlier than `until`.", param="since")
        if services.reconcile is None:
            raise InvalidRequestError("Reconciliation is not available on this gateway.")
        await services.ledger.flush()  # so the requests answered a moment ago are counted
        rows = await services.reconcile(start, end)
        data = [row.as_dict() for row in rows]
        return JSONResponse(
            {
                "object": "list",
                "since": start,
                "until": end,
                "drift_warning": DRIFT_WARNING,
                "warnings": sum(row.warning for row in rows),
                "data": data,
            }
        )

    return router
