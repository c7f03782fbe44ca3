"""The audit log, for administrators: every administrator's action (who, what, on which subject, when,
from where), newest first, filtered by actor, action and subject, paged by the entries' id cursor."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from starlette.responses import Response

from maas_gateway.audit.entries import AuditQuery
from maas_gateway.portal.context import PageContext
from maas_gateway.portal.navigation import Pages

__all__ = ["pages"]

pages = Pages()

_PAGE_SIZE = 50
_FILTERS = (("actor", 200), ("action", 100), ("subject", 300))
# The actions ``AdminActions`` records, offered as suggestions for the filter (any text is accepted).
_KNOWN_ACTIONS = (
    "key.create",
    "key.revoke",
    "key.rotate",
    "plan_request.approve",
    "plan_request.deny",
    "team.create",
    "team.delete",
    "team.member_add",
    "team.member_remove",
    "user.create",
    "user.update",
)


def _cursor(value: str | None) -> int | None:
    try:
        cursor = int(value or "")
    except ValueError:
        return None
    return cursor if 1 <= cursor <= 2**62 else None


@pages.page("/admin/audit", title="Audit log", section="admin", order=70)
async def audit(context: PageContext) -> Response:
    params = context.request.query_params
    filters = {name: params.get(name, "").strip()[:limit] for name, limit in _FILTERS}
    before = _cursor(params.get("before"))
    page = await context.services.audit.search(
        AuditQuery(
            actor=filters["actor"] or None,
            action=filters["action"] or None,
            subject=filters["subject"] or None,
            before=before,
            limit=_PAGE_SIZE,
        )
    )
    kept = {name: value for name, value in filters.items() if value}
    entries = [
        (entry, json.dumps(entry.details, sort_keys=True, ensure_ascii=False)) for entry in page.entries
    ]
    return context.render(
        "admin_audit.html",
        title="Audit log",
        entries=entries,
        filters=filters,
        known_actions=_KNOWN_ACTIONS,
        first_url="/portal/admin/audit?" + urlencode(kept) if before is not None else None,
        next_url=(
            "/portal/admin/audit?" + urlencode({**kept, "before": str(page.next_cursor)})
            if page.next_cursor is not None
            else None
        ),
    )
