"""The alert outbox in the shared SQL database: SQLite for one process, PostgreSQL across replicas.

``enqueue`` is ``INSERT ... ON CONFLICT DO NOTHING`` on the unique (webhook, user, limit, window start,
threshold): of replicas that see the same threshold reached, exactly one stores the alert. ``claim`` is
one ``UPDATE ... RETURNING`` over the due rows; on PostgreSQL the rows are picked ``FOR UPDATE SKIP
LOCKED`` so replicas claiming at once each take different alerts instead of queueing on each other's
locks, and the outer ``WHERE`` repeats the conditions so a row another replica claimed meanwhile is never
taken twice. SQLite runs one writer at a time, which gives the same.

``purge`` raises the horizon in ``alert_outbox_purges`` and deletes a batch of settled alerts of windows
ended by it, in one transaction; ``enqueue`` inserts only while the alert's window ended after the
horizon, reading it in the same statement (on PostgreSQL ``FOR SHARE``: an enqueue and a purge wait for
each other, and the enqueue then sees the new horizon). No alert deleted by a purge can be stored again.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, case, delete, literal, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from maas_gateway.alerts.events import AlertEvent, AlertRecord, AlertState, ClaimedAlert
from maas_gateway.alerts.outbox import MAX_ERROR_LENGTH
from maas_gateway.alerts.tables import alert_outbox, alert_outbox_purges
from maas_gateway.database import Database

__all__ = ["SqlAlertOutbox"]

_t = alert_outbox.c
_horizon = alert_outbox_purges.c
_SETTLED = ("delivered", "failed")


class SqlAlertOutbox:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def start(self) -> None:
        await self.database.ready()

    async def enqueue(self, event: AlertEvent) -> bool:
        insert = postgresql_insert if self.database.is_postgres else sqlite_insert
        row = {
            "alert_id": event.alert_id,
            "webhook": event.webhook,
            "user": event.user,
            "tier": event.tier,
            "limit_key": event.limit_key,
            "limit_value": event.limit,
            "unit": event.unit,
            "window": event.window,
            "window_start": event.window_start,
            "window_end": event.window_end,
            "threshold": event.threshold,
            "used": event.used,
            "created_at": event.created_at,
            "state": "pending",
            "attempts": 0,
            "next_attempt_at": event.created_at,
            "claim": None,
            "lease_until": 0.0,
        }
        # INSERT ... SELECT from the horizon's row: no row (the window ended by the horizon), no insert.
        values = select(*(literal(value, _t[name].type) for name, value in row.items())).where(
            _horizon.id == 1, _horizon.purged_through < event.window_end
        )
        if self.database.is_postgres:
            values = values.with_for_update(read=True)
        statement = (
            insert(alert_outbox)
            .from_select(list(row), values)
            .on_conflict_do_nothing(
                index_elements=["webhook", "user", "limit_key", "window_start", "threshold"]
            )
        )
        await self.database.ready()
        async with self.database.engine.begin() as connection:
            result = await connection.execute(statement)
        return bool(result.rowcount == 1)

    async def claim(self, now: float, lease: float, limit: int) -> list[ClaimedAlert]:
        due = and_(_t.state == "pending", _t.next_attempt_at <= now, _t.lease_until <= now)
        pick = select(_t.alert_id).where(due).order_by(_t.next_attempt_at, _t.created_at).limit(limit)
        if self.database.is_postgres:
            pick = pick.with_for_update(skip_locked=True)
        token = uuid.uuid4().hex
        statement = (
            update(alert_outbox)
            .where(_t.alert_id.in_(pick.scalar_subquery()), due)
            .values(claim=token, lease_until=now + lease, attempts=_t.attempts + 1)
            .returning(*alert_outbox.c)
        )
        await self.database.ready()
        async with self.database.engine.begin() as connection:
            rows = (await connection.execute(statement)).mappings().all()
        claimed = [ClaimedAlert(_event(row), int(row["attempts"]), token, now + lease) for row in rows]
        return sorted(claimed, key=lambda alert: alert.event.created_at)

    async def _settle(self, claimed: ClaimedAlert, **values: Any) -> bool:
        statement = (
            update(alert_outbox)
            .where(_t.alert_id == claimed.event.alert_id, _t.claim == claimed.claim, _t.state == "pending")
            .values(claim=None, lease_until=0.0, **values)
        )
        async with self.database.engine.begin() as connection:
            result = await connection.execute(statement)
        return bool(result.rowcount == 1)

    async def delivered(self, claimed: ClaimedAlert, now: float) -> bool:
        return await self._settle(claimed, state="delivered", delivered_at=now)

    async def retry_at(self, claimed: ClaimedAlert, when: float, error: str) -> bool:
        return await self._settle(claimed, next_attempt_at=when, last_error=error[:MAX_ERROR_LENGTH])

    async def give_up(self, claimed: ClaimedAlert, now: float, error: str) -> bool:
        return await self._settle(claimed, state="failed", last_error=error[:MAX_ERROR_LENGTH])

    async def state(self, alert_id: str) -> AlertState | None:
        statement = select(_t.state, _t.attempts, _t.next_attempt_at, _t.delivered_at, _t.last_error).where(
            _t.alert_id == alert_id
        )
        await self.database.ready()
        async with self.database.engine.connect() as connection:
            row = (await connection.execute(statement)).first()
        if row is None:
            return None
        return AlertState(row[0], int(row[1]), float(row[2]), row[3], row[4])

    async def listed(
        self, *, owners: Sequence[str] | None = None, ending_after: float = 0.0, limit: int = 100
    ) -> list[AlertRecord]:
        statement = select(alert_outbox).where(_t.window_end > ending_after)
        if owners is not None:
            statement = statement.where(_t.user.in_(list(owners)))
        statement = statement.order_by(_t.created_at.desc(), _t.alert_id.desc()).limit(limit)
        await self.database.ready()
        async with self.database.engine.connect() as connection:
            rows = (await connection.execute(statement)).mappings().all()
        return [AlertRecord(_event(row), _state(row)) for row in rows]

    async def purge(self, ended_by: float, *, limit: int) -> int:
        raise_horizon = (
            update(alert_outbox_purges)
            .where(_horizon.id == 1)
            .values(
                purged_through=case(
                    (_horizon.purged_through < ended_by, ended_by), else_=_horizon.purged_through
                )
            )
        )
        ended = _t.state.in_(_SETTLED) & (_t.window_end <= ended_by)
        batch = select(_t.alert_id).where(ended).limit(limit)
        await self.database.ready()
        async with self.database.engine.begin() as connection:
            await connection.execute(raise_horizon)  # first: it waits for, then blocks, enqueues
            result = await connection.execute(
                delete(alert_outbox).where(_t.alert_id.in_(batch.scalar_subquery()))
            )
        return int(result.rowcount or 0)

    async def aclose(self) -> None:
        return None  # the database is shared; its owner closes it


def _event(row: Any) -> AlertEvent:
    return AlertEvent(
        alert_id=row["alert_id"],
        webhook=row["webhook"],
        user=row["user"],
        tier=row["tier"],
        limit_key=row["limit_key"],
        limit=int(row["limit_value"]),
        unit=row["unit"],
        window=row["window"],
        window_start=int(row["window_start"]),
        window_end=int(row["window_end"]),
        threshold=int(row["threshold"]),
        used=int(row["used"]),
        created_at=float(row["created_at"]),
    )


def _state(row: Any) -> AlertState:
    delivered_at = row["delivered_at"]
    return AlertState(
        row["state"],
        int(row["attempts"]),
        float(row["next_attempt_at"]),
        None if delivered_at is None else float(delivered_at),
        row["last_error"],
    )
