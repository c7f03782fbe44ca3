"""The leases this process holds, and their renewal while their requests run.

A lease is renewed once a third of its time has passed, so two renewals in a row can fail before it
expires. Renewal is one storage call for every lease due, every ``tick``. A lease found expired (this
process stalled for longer than a lease time) is not taken again: its slot may have gone to another
request; its request goes on, and the loss is counted and logged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from maas_gateway.capacity.base import CapacityStorage, HeldLease
from maas_gateway.capacity.rules import Demand

__all__ = ["Held", "HeldLeases"]

logger = logging.getLogger("maas_gateway.capacity")


@dataclass(eq=False, slots=True)
class Held:
    demand: Demand
    keys: tuple[str, ...]
    since: float  # event-loop time the slot was taken
    renew_at: float  # wall-clock time the lease is next renewed
    lost: bool = False


class HeldLeases:
    def __init__(self, storage: CapacityStorage, clock: Callable[[], float] = time.time) -> None:
        self._storage = storage
        self._clock = clock
        self._held: dict[str, Held] = {}
        self.lost = 0

    def __len__(self) -> int:
        return len(self._held)

    def hold(self, demand: Demand, lease: str, keys: tuple[str, ...], now: float) -> None:
        """``lease`` was granted at ``now`` in the slot sets ``keys``."""
        since = asyncio.get_running_loop().time()
        self._held[lease] = Held(demand, keys, since, now + demand.lease_ttl / 3)

    def pop(self, lease: str) -> Held | None:
        return self._held.pop(lease, None)

    async def renew_due(self) -> int:
        """Renew every lease past a third of its time; return how many were due."""
        now = self._clock()
        due = [
            (lease, held)
            for lease, held in self._held.items()
            if held.keys and not held.lost and held.renew_at <= now
        ]
        if not due:
            return 0
        leases = [HeldLease(lease, held.keys, now + held.demand.lease_ttl) for lease, held in due]
        lost = set(await self._storage.renew(leases, now))
        for lease, held in due:
            if lease in lost:
                held.lost = True
                self.lost += 1
                logger.warning(
                    "A capacity lease of model '%s' expired before it was renewed (this process stalled "
                    "for a lease time?); its request goes on without holding a slot.",
                    held.demand.model,
                )
            else:
                held.renew_at = now + held.demand.lease_ttl / 3
        return len(due)

    async def keep(self, tick: float = 0.2) -> None:
        """Renew due leases every ``tick`` seconds until cancelled (a background task of the server)."""
        while True:
            await asyncio.sleep(tick)
            try:
                await self.renew_due()
            except Exception:  # renewal must go on; a lease not renewed only expires
                logger.exception("Renewing capacity leases failed; trying again.")
