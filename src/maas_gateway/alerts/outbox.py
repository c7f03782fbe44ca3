"""The alert outbox: the interface, and the in-memory implementation.

The outbox is where an alert is decided and kept until it is delivered. ``enqueue`` stores an alert
unless one for the same (webhook, user, limit, window start, threshold) exists: with a shared database
that makes an alert fire once across every replica; in memory, once per process. A sender ``claim``s
alerts that are due, under a lease, and settles each as delivered, to retry later, or given up. A claim
whose sender died expires with its lease, so the alert is sent again: delivery is at least once, and
receivers drop repeats by the alert's id (docs/alerts.md).

Settled alerts are kept until ``purge`` deletes those whose window ended by a horizon (the outbox's
retention ago, ``retention.py``). The horizon is kept, and any alert whose window ended by it is refused:
the unique identity is what makes an alert once, so deleting a row must never let its identity be stored
again, even by a replica that reads a budget of an old window long after.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from maas_gateway.alerts.events import AlertEvent, AlertRecord, AlertState, ClaimedAlert

__all__ = ["MAX_ERROR_LENGTH", "AlertOutbox", "InMemoryAlertOutbox"]

MAX_ERROR_LENGTH = 500


class AlertOutbox(Protocol):
    async def start(self) -> None:
        """Make the storage ready (migrate the database); raises while it is unreachable."""
        ...

    async def enqueue(self, event: AlertEvent) -> bool:
        """Store ``event`` unless an alert with its identity exists; whether this call stored it."""
        ...

    async def claim(self, now: float, lease: float, limit: int) -> list[ClaimedAlert]:
        """Up to ``limit`` pending alerts due by ``now`` and not held by another sender, each held for
        ``lease`` seconds and counted as one more attempt; the oldest due first."""
        ...

    async def delivered(self, claimed: ClaimedAlert, now: float) -> bool:
        """Mark delivered, if ``claimed`` still holds it; whether it did."""
        ...

    async def retry_at(self, claimed: ClaimedAlert, when: float, error: str) -> bool:
        """Release the alert to be tried again at ``when``, recording ``error``, if still held."""
        ...

    async def give_up(self, claimed: ClaimedAlert, now: float, error: str) -> bool:
        """Mark failed for good (no more attempts), recording ``error``, if still held."""
        ...

    async def state(self, alert_id: str) -> AlertState | None:
        """Where the alert stands, or ``None`` if there is no such alert."""
        ...

    async def listed(
        self, *, owners: Sequence[str] | None = None, ending_after: float = 0.0, limit: int = 100
    ) -> list[AlertRecord]:
        """Up to ``limit`` alerts, newest first: of budgets owned by ``owners`` only (a user's name,
        ``team:NAME``, ``tier:NAME``, ``global``; ``None``: everyone's) whose window ends after
        ``ending_after``. What the portal shows; never used to decide or deliver an alert."""
        ...

    async def purge(self, ended_by: float, *, limit: int) -> int:
        """Refuse from now on every alert whose window ended by ``ended_by``, then delete up to ``limit``
        settled (delivered or given up) alerts of such windows; how many went. Pending alerts stay."""
        ...

    async def aclose(self) -> None: ...


@dataclass(slots=True)
class _Row:
    event: AlertEvent
    status: AlertState
    claim: str | None = None
    lease_until: float = 0.0


class InMemoryAlertOutbox:
    """The outbox in a dict: alerts are once per process, and lost with it (no database configured); its
    memory stays bounded by the purge."""

    def __init__(self) -> None:
        self._rows: dict[str, _Row] = {}
        self._identities: set[tuple[str, str, str, int, int]] = set()
        self._purged_through = 0.0  # as migration 0011 starts it

    async def start(self) -> None:
        return None

    async def enqueue(self, event: AlertEvent) -> bool:
        if event.identity in self._identities or event.window_end <= self._purged_through:
            return False
        self._identities.add(event.identity)
        status = AlertState("pending", 0, event.created_at, None, None)
        self._rows[event.alert_id] = _Row(event, status)
        return True

    async def claim(self, now: float, lease: float, limit: int) -> list[ClaimedAlert]:
        due = [
            row
            for row in self._rows.values()
            if row.status.state == "pending" and row.status.next_attempt_at <= now and row.lease_until <= now
        ]
        due.sort(key=lambda row: (row.status.next_attempt_at, row.event.created_at))
        claimed = []
        for row in due[:limit]:
            row.claim = uuid.uuid4().hex
            row.lease_until = now + lease
            row.status = replace(row.status, attempts=row.status.attempts + 1)
            claimed.append(ClaimedAlert(row.event, row.status.attempts, row.claim, row.lease_until))
        return claimed

    def _held(self, claimed: ClaimedAlert) -> _Row | None:
        row = self._rows.get(claimed.event.alert_id)
        if row is None or row.claim != claimed.claim or row.status.state != "pending":
            return None
        return row

    async def delivered(self, claimed: ClaimedAlert, now: float) -> bool:
        row = self._held(claimed)
        if row is None:
            return False
        row.status = replace(row.status, state="delivered", delivered_at=now)
        row.claim, row.lease_until = None, 0.0
        return True

    async def retry_at(self, claimed: ClaimedAlert, when: float, error: str) -> bool:
        row = self._held(claimed)
        if row is None:
            return False
        row.status = replace(row.status, next_attempt_at=when, last_error=error[:MAX_ERROR_LENGTH])
        row.claim, row.lease_until = None, 0.0
        return True

    async def give_up(self, claimed: ClaimedAlert, now: float, error: str) -> bool:
        row = self._held(claimed)
        if row is None:
            return False
        row.status = replace(row.status, state="failed", last_error=error[:MAX_ERROR_LENGTH])
        row.claim, row.lease_until = None, 0.0
        return True

    async def state(self, alert_id: str) -> AlertState | None:
        row = self._rows.get(alert_id)
        return None if row is None else row.status

    async def listed(
        self, *, owners: Sequence[str] | None = None, ending_after: float = 0.0, limit: int = 100
    ) -> list[AlertRecord]:
        wanted = None if owners is None else set(owners)
        rows = [
            row
            for row in self._rows.values()
            if (wanted is None or row.event.user in wanted) and row.event.window_end > ending_after
        ]
        rows.sort(key=lambda row: (row.event.created_at, row.event.alert_id), reverse=True)
        return [AlertRecord(row.event, row.status) for row in rows[:limit]]

    async def purge(self, ended_by: float, *, limit: int) -> int:
        self._purged_through = max(self._purged_through, ended_by)
        ended = [
            alert_id
            for alert_id, row in self._rows.items()
            if row.status.state != "pending" and row.event.window_end <= ended_by
        ][:limit]
        for alert_id in ended:  # their identities stay refused by the horizon, not by the set
            self._identities.discard(self._rows.pop(alert_id).event.identity)
        return len(ended)

    async def aclose(self) -> None:
        return None
