"""The capacity gate: a request takes a lease on its user's, its tier's and its model's slots, or waits.

A request whose slots are free (and before whom nobody of its rank or a better one waits here) takes
them in one storage call and goes on. Otherwise it joins its model's line (``FairQueue``) and waits, at
most its queue timeout, for one background task per line (the pump) to offer it a slot. The pump offers
slots when this process releases one (at once) and every ``poll_interval`` (for slots released by other
replicas, which this process does not hear of), in line order, asking the line again after each offer:
a user served goes to the back of their tier's turns, and may be next again if nobody else waits. An
offer that fails because the model has nothing (its slots, its tokens, a better tier waiting elsewhere)
ends the round, since nobody later in line could have the slot either; one that fails on the user's own
allowance passes over that user, and one that fails on the tier's share passes over that tier.

Priority between replicas: a request refused because the model has nothing, which will wait, registers
in its tier's waiting set for the model for a few polls at a time (renewed each time it is offered a slot
again); a request of a worse tier is refused while any registration of a better one is live, so a slot
that comes free is left to the better tier whichever replica it waits on. A replica that dies leaves
registrations that lapse within those few polls, and leases that lapse within a lease time: the gate
renews its leases (``HeldLeases``) while their requests run.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from maas_gateway.capacity.base import AcquireRequest, BudgetCharge, CapacityStorage, Refusal
from maas_gateway.capacity.claims import acquire_request, model_has_nothing, registers
from maas_gateway.capacity.drain import DrainRate
from maas_gateway.capacity.events import CapacityEvents, NoEvents
from maas_gateway.capacity.keys import minute_ends_in, model_tokens, waiting
from maas_gateway.capacity.leases import HeldLeases
from maas_gateway.capacity.queue import FairQueue
from maas_gateway.capacity.refusals import turned_away
from maas_gateway.capacity.rules import Demand
from maas_gateway.errors import GatewayError

__all__ = ["CapacityGate", "Slot"]

logger = logging.getLogger("maas_gateway.capacity")

_OFFERS_PER_ROUND = 32  # storage calls one round may make when many users wait on their own allowance
_BUDGET_GRACE = 5.0  # a token counter outlives its minute a little, as the limit counters do


class Slot:
    """A request's lease: held until ``release`` (which the pipeline calls once, in a ``finally``)."""

    __slots__ = ("_gate", "_released", "lease", "waited")

    def __init__(self, gate: CapacityGate, lease: str, waited: float) -> None:
        self._gate = gate
        self.lease = lease
        self.waited = waited  # seconds spent in line
        self._released = False

    async def release(self, tokens: int = 0) -> None:
        """Give the slots back and charge ``tokens`` to the model's budget; a second call does nothing."""
        if not self._released:
            self._released = True
            await self._gate._release(self.lease, tokens)


@dataclass(eq=False, slots=True)
class _Waiter:
    demand: Demand
    lease: str
    future: asyncio.Future[Slot]
    since: float  # event-loop time it joined the line
    refusal: Refusal
    registered: bool  # may have a registration in its tier's waiting set


@dataclass(eq=False, slots=True)
class _Line:
    """One model's line in this process, and how fast its slots come free here."""

    queue: FairQueue[_Waiter] = field(default_factory=FairQueue)
    drain: DrainRate = field(default_factory=DrainRate)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    pump: asyncio.Task[None] | None = None
    poll_interval: float = 0.05


class CapacityGate:
    """Built once per process; each request brings its ``Demand`` from the rules in force."""

    def __init__(
        self,
        storage: CapacityStorage,
        *,
        events: CapacityEvents | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._storage = storage
        self._events: CapacityEvents = events or NoEvents()
        self._clock = clock
        self._lines: dict[str, _Line] = {}
        self.leases = HeldLeases(storage, clock)
        self._prefix = secrets.token_hex(8)  # lease ids are unique across replicas and restarts
        self._ids = itertools.count()

    @property
    def held(self) -> int:
        """Leases this process holds."""
        return len(self.leases)

    def waiting(self, model: str) -> int:
        line = self._lines.get(model)
        return len(line.queue) if line is not None else 0

    async def acquire(self, demand: Demand) -> Slot:
        """A slot for the request, at once or after waiting; raises 429 or 503 (with ``Retry-After``)
        when none comes before the deadline or the line has no room."""
        line = self._lines.get(demand.model)
        if line is None:
            line = self._lines[demand.model] = _Line()
        line.poll_interval = demand.poll_interval
        lease = f"{self._prefix}:{next(self._ids)}"
        refusal: Refusal = "capacity"
        registered = False
        if not line.queue.waiting_at_or_above(demand.rank):
            now = self._clock()
            room = len(line.queue) < demand.queue.max_queue
            request = acquire_request(demand, lease, now, register=room)
            result = await self._storage.acquire(request, now)
            if result.acquired:
                return self._hold(demand, request, now, waited=0.0)
            assert result.refusal is not None
            refusal = result.refusal
            registered = room and model_has_nothing(refusal)
        return await self._wait(line, demand, lease, refusal, registered)

    async def _wait(
        self, line: _Line, demand: Demand, lease: str, refusal: Refusal, registered: bool
    ) -> Slot:
        loop = asyncio.get_running_loop()
        if len(line.queue) >= demand.queue.max_queue:
            victim = line.queue.victim(demand.rank, demand.user) if demand.queue.max_queue else None
            if victim is None:
                self._events.waited(demand.model, demand.tier, 0.0, "rejected")
                raise turned_away(
                    demand,
                    refusal,
                    "full",
                    waited=0.0,
                    ahead=len(line.queue),
                    drain=line.drain,
                    now=self._clock(),
                )
            self._shed(line, victim)
        waiter = _Waiter(demand, lease, loop.create_future(), loop.time(), refusal, registered)
        line.queue.push(waiter, demand.rank, demand.user)
        self._events.queue_changed(demand.model, demand.tier, 1)
        self._wake(line)
        try:
            await asyncio.wait((waiter.future,), timeout=demand.queue.timeout)
        except asyncio.CancelledError:
            await self._abandon(line, waiter)
            raise
        if waiter.future.done():
            try:
                return waiter.future.result()
            except GatewayError:  # shed, or the storage refused: not waiting any more
                await self._withdraw(waiter)
                raise
        waited = loop.time() - waiter.since
        ahead = sum(count for rank, count in line.queue.depth().items() if rank <= demand.rank) - 1
        await self._abandon(line, waiter)
        self._events.waited(demand.model, demand.tier, waited, "timeout")
        raise turned_away(
            demand, waiter.refusal, "timeout", waited=waited, ahead=ahead, drain=line.drain, now=self._clock()
        )

    def _shed(self, line: _Line, victim: _Waiter) -> None:
        line.queue.remove(victim)
        demand = victim.demand
        self._events.queue_changed(demand.model, demand.tier, -1)
        waited = asyncio.get_running_loop().time() - victim.since
        self._events.waited(demand.model, demand.tier, waited, "shed")
        error = turned_away(
            demand,
            victim.refusal,
            "shed",
            waited=waited,
            ahead=len(line.queue),
            drain=line.drain,
            now=self._clock(),
        )
        victim.future.set_exception(error)

    async def _abandon(self, line: _Line, waiter: _Waiter) -> None:
        """The waiter stops waiting (deadline or cancellation): out of line, a late slot given back."""
        if line.queue.remove(waiter):
            self._events.queue_changed(waiter.demand.model, waiter.demand.tier, -1)
        future = waiter.future
        if not future.done():
            future.cancel()
        elif not future.cancelled() and future.exception() is None:
            await future.result().release()  # the slot came just as the deadline passed
        await self._withdraw(waiter)

    async def _withdraw(self, waiter: _Waiter) -> None:
        demand = waiter.demand
        if waiter.registered and registers(demand):
            await self._storage.withdraw(waiting(demand.model, demand.rank), waiter.lease)

    def _wake(self, line: _Line) -> None:
        line.wakeup.set()
        if line.pump is None:
            line.pump = asyncio.get_running_loop().create_task(self._pump(line), name="capacity-line")

    async def _pump(self, line: _Line) -> None:
        try:
            while line.queue:
                line.wakeup.clear()
                try:
                    await self._offer(line)
                except Exception:  # one failed round must not stop the line; waiters keep their deadlines
                    logger.exception("Offering capacity slots to waiting requests failed; trying again.")
                if not line.queue:
                    break
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(line.poll_interval):
                        await line.wakeup.wait()
        finally:
            line.pump = None

    async def _offer(self, line: _Line) -> None:
        """One round: offer slots in line order until the model has none left for anyone."""
        loop = asyncio.get_running_loop()
        full_users: set[str] = set()  # users whose own allowance is in use: their requests wait
        full_shares: set[int] = set()  # ranks whose tier share is in use: all their users wait
        for _ in range(_OFFERS_PER_ROUND):
            # Asked each time: a user served goes to the back of the turns, and the line may have
            # changed while the storage answered.
            waiter = line.queue.next(full_users, full_shares)
            if waiter is None:
                return
            demand = waiter.demand
            now = self._clock()
            request = acquire_request(demand, waiter.lease, now, register=True)
            try:
                result = await self._storage.acquire(request, now)
            except GatewayError as exc:  # the storage is unreachable and the failure policy refuses
                if line.queue.remove(waiter):
                    self._events.queue_changed(demand.model, demand.tier, -1)
                    waiter.future.set_exception(exc)
                continue
            if result.acquired:
                slot = self._hold(demand, request, now, waited=loop.time() - waiter.since)
                if waiter in line.queue:
                    line.queue.served(waiter)
                    self._events.queue_changed(demand.model, demand.tier, -1)
                    self._events.waited(demand.model, demand.tier, slot.waited, "served")
                    waiter.future.set_result(slot)
                else:
                    await slot.release()  # it stopped waiting while the slot was being taken
                continue
            assert result.refusal is not None
            waiter.refusal = result.refusal
            if model_has_nothing(result.refusal):
                waiter.registered = True
                return
            if result.refusal == "share":
                full_shares.add(demand.rank)
            else:
                full_users.add(demand.user)

    def _hold(self, demand: Demand, request: AcquireRequest, now: float, waited: float) -> Slot:
        self.leases.hold(demand, request.lease, tuple(slot.key for slot in request.slots), now)
        self._events.in_flight_changed(demand.model, 1)
        return Slot(self, request.lease, waited)

    async def _release(self, lease: str, tokens: int) -> None:
        held = self.leases.pop(lease)
        if held is None:
            return
        demand = held.demand
        line = self._lines[demand.model]
        line.drain.released(asyncio.get_running_loop().time() - held.since)
        self._events.in_flight_changed(demand.model, -1)
        now = self._clock()
        charge = None
        if demand.tokens_per_minute is not None and tokens > 0:
            charge = BudgetCharge(
                model_tokens(demand.model, now), tokens, minute_ends_in(now) + _BUDGET_GRACE
            )
        try:
            await self._storage.release(lease, held.keys, charge, now)
        finally:
            if line.queue:
                self._wake(line)

    @property
    def storage(self) -> CapacityStorage:
        return self._storage

    async def aclose(self) -> None:
        """Stop the lines' pumps and close the storage (the gate owns it)."""
        pumps = [line.pump for line in self._lines.values() if line.pump is not None]
        for pump in pumps:
            pump.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
        await self._storage.aclose()
