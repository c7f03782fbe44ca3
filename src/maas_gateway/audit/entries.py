"""What the audit log holds and the interface every implementation keeps.

Two implementations keep the same contract (``tests/test_audit_log_contract.py``): ``memory_log`` for
demos and tests, ``sql_log`` when ``database.url`` is set. Entries are only ever appended; each gets an
increasing id, which orders the log (newest first) and is the cursor of its pages, so entries written at
the same moment by two replicas are both kept and never reordered between pages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

__all__ = ["Actor", "ActorKind", "AuditEntry", "AuditLog", "AuditPage", "AuditQuery", "safe_details"]

ActorKind = Literal["admin_key", "oidc", "portal"]

_REDACTED = "[redacted]"
# Detail names that could hold a credential; their values are never stored, whatever the caller passed.
_SECRET_NAMES = frozenset({"key", "secret", "password", "token", "authorization", "api_key", "plaintext"})
# A lifecycle key (``maas_<prefix>_<secret>``, see ``auth.key_service.new_key``) anywhere inside a text.
_LIFECYCLE_KEY = re.compile(r"maas_[a-z0-9]{10}_[A-Za-z0-9_-]{16,}")


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acted: the admin key (``name`` is ``admin key``), an admin group's token user, or a portal
    user; ``address`` is the client's address as the gateway sees it (behind trusted proxies)."""

    name: str
    kind: ActorKind
    address: str


@dataclass(frozen=True, slots=True)
class AuditEntry:
    entry_id: int
    at: float
    actor: str
    actor_kind: ActorKind
    address: str
    action: str  # such as key.revoke, user.update, plan_request.approve
    subject: str  # what was acted on: a key id, a user name, a plan request id
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.entry_id,
            "at": self.at,
            "actor": self.actor,
            "actor_kind": self.actor_kind,
            "address": self.address,
            "action": self.action,
            "subject": self.subject,
            "details": self.details,
        }


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Filters (all optional, combined with AND) and one page: entries older than the ``before`` id."""

    actor: str | None = None
    action: str | None = None
    subject: str | None = None
    since: float | None = None  # inclusive
    until: float | None = None  # exclusive
    before: int | None = None  # the cursor: only entries with a smaller id
    limit: int = 50


@dataclass(frozen=True, slots=True)
class AuditPage:
    entries: list[AuditEntry]
    next_cursor: int | None  # pass as ``before`` for the next (older) page; None on the last page


def safe_details(details: dict[str, Any]) -> dict[str, Any]:
    """``details`` with anything that could be a credential replaced, at any depth: values under a secret's
    name, and lifecycle keys (``maas_<prefix>_<secret>``) inside any text."""
    return {name: _safe(name, value) for name, value in details.items()}


def _safe(name: str, value: Any) -> Any:
    if name.lower() in _SECRET_NAMES:
        return _REDACTED
    if isinstance(value, dict):
        return safe_details(value)
    if isinstance(value, list | tuple):
        return [_safe("", item) for item in value]
    if isinstance(value, str):
        return _LIFECYCLE_KEY.sub(_REDACTED, value)
    return value


class AuditLog(Protocol):
    async def record(
        self, actor: Actor, action: str, subject: str, details: dict[str, Any], at: float
    ) -> AuditEntry:
        """Append one entry (its details passed through ``safe_details``); return it with its id."""
        ...

    async def search(self, query: AuditQuery) -> AuditPage:
        """Entries matching ``query``, newest first."""
        ...
