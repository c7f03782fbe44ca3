"""The audit log held in the process, for demos and tests (lost at exit)."""

from __future__ import annotations

from typing import Any

from maas_gateway.audit.entries import Actor, AuditEntry, AuditPage, AuditQuery, safe_details

__all__ = ["InMemoryAuditLog"]


class InMemoryAuditLog:
    def __init__(self) -> None:
        self._entries: list[AuditEntry] = []

    async def record(
        self, actor: Actor, action: str, subject: str, details: dict[str, Any], at: float
    ) -> AuditEntry:
        entry = AuditEntry(
            len(self._entries) + 1,
            at,
            actor.name,
            actor.kind,
            actor.address,
            action,
            subject,
            safe_details(details),
        )
        self._entries.append(entry)
        return entry

    async def search(self, query: AuditQuery) -> AuditPage:
        found: list[AuditEntry] = []
        for entry in reversed(self._entries):
            if _matches(entry, query):
                found.append(entry)
                if len(found) > query.limit:
                    break
        more = len(found) > query.limit
        page = found[: query.limit]
        return AuditPage(page, page[-1].entry_id if more and page else None)


def _matches(entry: AuditEntry, query: AuditQuery) -> bool:
    return (
        (query.before is None or entry.entry_id < query.before)
        and (query.actor is None or entry.actor == query.actor)
        and (query.action is None or entry.action == query.action)
        and (query.subject is None or entry.subject == query.subject)
        and (query.since is None or entry.at >= query.since)
        and (query.until is None or entry.at < query.until)
    )
