"""What the requests of one configuration acquire capacity through: its rules over the long-lived gate.

A snapshot holds one (or ``None`` when nothing is capped, so that uncapped gateways pay nothing); the
gate, with its lines, leases and drain rates, outlives every reload.
"""

from __future__ import annotations

from maas_gateway.capacity.gate import CapacityGate, Slot
from maas_gateway.capacity.rules import CapacityRules

__all__ = ["CapacityGuard"]


class CapacityGuard:
    def __init__(self, gate: CapacityGate, rules: CapacityRules) -> None:
        self.gate = gate
        self.rules = rules

    async def acquire(self, user: str, tier: str, model: str) -> Slot | None:
        """A slot for the request, waiting for one if need be; ``None`` when nothing caps it. Raises 429
        (the user's own concurrency) or 503 (the model's capacity) when none comes in time."""
        demand = self.rules.demand(user, tier, model)
        if demand is None:
            return None
        return await self.gate.acquire(demand)
