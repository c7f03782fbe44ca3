"""Plan change requests in the shared SQL database (SQLite or PostgreSQL).

Both rules of the contract are the database's: the partial unique index ``ux_plan_requests_one_pending``
refuses a second pending request of a user, and a decision is one ``UPDATE … WHERE status = :from``,
whose row count says whether this call or a concurrent one took it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from maas_gateway.database import Database
from maas_gateway.plans.requests import PlanRequest, PlanRequestStatus
from maas_gateway.plans.tables import plan_requests

__all__ = ["SqlPlanRequestStore"]


def _request(row: RowMapping) -> PlanRequest:
    return PlanRequest(
        request_id=row["request_id"],
        user=row["user"],
        from_tier=row["from_tier"],
        tier=row["tier"],
        note=row["note"],
        status=row["status"],
        created_at=row["created_at"],
        decided_at=row["decided_at"],
        decided_by=row["decided_by"],
        reason=row["reason"],
    )


def _values(request: PlanRequest) -> dict[str, Any]:
    return {
        "request_id": request.request_id,
        "user": request.user,
        "from_tier": request.from_tier,
        "tier": request.tier,
        "note": request.note,
        "status": request.status,
        "created_at": request.created_at,
        "decided_at": request.decided_at,
        "decided_by": request.decided_by,
        "reason": request.reason,
    }


class SqlPlanRequestStore:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def create(self, request: PlanRequest) -> PlanRequest | None:
        await self.database.ready()
        try:
            async with self.database.engine.begin() as connection:
                await connection.execute(insert(plan_requests).values(**_values(request)))
        except IntegrityError:
            if await self.get(request.request_id) is not None:
                raise ValueError(f"The plan request {request.request_id} exists already.") from None
            return None  # the user has a pending request: the partial unique index refused this one
        return request

    async def get(self, request_id: str) -> PlanRequest | None:
        await self.database.ready()
        async with self.database.engine.connect() as connection:
            statement = select(plan_requests).where(plan_requests.c.request_id == request_id)
            row = (await connection.execute(statement)).mappings().first()
        return _request(row) if row is not None else None

    async def list(
        self, *, user: str | None, status: PlanRequestStatus | None, offset: int, limit: int
    ) -> tuple[list[PlanRequest], int]:
        conditions = []
        if user is not None:
            conditions.append(plan_requests.c.user == user)
        if status is not None:
            conditions.append(plan_requests.c.status == status)
        query = (
            select(plan_requests)
            .where(*conditions)
            .order_by(plan_requests.c.created_at.desc(), plan_requests.c.request_id.desc())
            .offset(offset)
            .limit(limit)
        )
        await self.database.ready()
        async with self.database.engine.connect() as connection:
            total = await connection.execute(
                select(func.count()).select_from(plan_requests).where(*conditions)
            )
            rows = (await connection.execute(query)).mappings().all()
            return [_request(row) for row in rows], int(total.scalar_one())

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
        statement = (
            update(plan_requests)
            .where(plan_requests.c.request_id == request_id, plan_requests.c.status == from_status)
            .values(status=to_status, decided_by=by, reason=reason, decided_at=at)
        )
        await self.database.ready()
        try:
            async with self.database.engine.begin() as connection:
                if not (await connection.execute(statement)).rowcount:
                    return None
                moved = select(plan_requests).where(plan_requests.c.request_id == request_id)
                row = (await connection.execute(moved)).mappings().one()
        except IntegrityError:
            return None  # reopening would make a second pending request of the user
        return _request(row)
