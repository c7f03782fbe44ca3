"""Capacity: model-wide caps and per-user concurrency as leases shared by every replica, and a fair line
by tier for requests that wait for a slot. See docs/routing.md ("Caps and fair sharing")."""

from maas_gateway.capacity.base import (
    AcquireRequest,
    AcquireResult,
    BudgetCharge,
    CapacityStorage,
    HeldLease,
    Refusal,
    SlotClaim,
    TokenBudget,
)
from maas_gateway.capacity.memory import InMemoryCapacityStorage

__all__ = [
    "AcquireRequest",
    "AcquireResult",
    "BudgetCharge",
    "CapacityStorage",
    "HeldLease",
    "InMemoryCapacityStorage",
    "Refusal",
    "SlotClaim",
    "TokenBudget",
]
