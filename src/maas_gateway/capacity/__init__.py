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
    SlotKind,
    TokenBudget,
)
from maas_gateway.capacity.events import CapacityEvents, NoEvents, WaitOutcome
from maas_gateway.capacity.gate import CapacityGate, Slot
from maas_gateway.capacity.guard import CapacityGuard
from maas_gateway.capacity.memory import InMemoryCapacityStorage
from maas_gateway.capacity.rules import CapacityRules, Demand, ModelCaps, QueueSettings

__all__ = [
    "AcquireRequest",
    "AcquireResult",
    "BudgetCharge",
    "CapacityEvents",
    "CapacityGate",
    "CapacityGuard",
    "CapacityRules",
    "CapacityStorage",
    "Demand",
    "HeldLease",
    "InMemoryCapacityStorage",
    "ModelCaps",
    "NoEvents",
    "QueueSettings",
    "Refusal",
    "Slot",
    "SlotClaim",
    "SlotKind",
    "TokenBudget",
    "WaitOutcome",
]
