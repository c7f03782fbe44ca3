"""The audit log: every administrator's action (who, what, on which subject, when, from where), kept in
the database and read by ``GET /admin/audit`` and the portal."""

from maas_gateway.audit.entries import Actor, AuditEntry, AuditLog, AuditPage, AuditQuery, safe_details
from maas_gateway.audit.memory_log import InMemoryAuditLog

__all__ = [
    "Actor",
    "AuditEntry",
    "AuditLog",
    "AuditPage",
    "AuditQuery",
    "InMemoryAuditLog",
    "safe_details",
]
