"""Plan change requests: a user asks for another tier, an administrator approves or denies."""

from maas_gateway.plans.memory_store import InMemoryPlanRequestStore
from maas_gateway.plans.requests import PlanRequest, PlanRequestStatus, PlanRequestStore, new_request_id

__all__ = [
    "InMemoryPlanRequestStore",
    "PlanRequest",
    "PlanRequestStatus",
    "PlanRequestStore",
    "new_request_id",
]
