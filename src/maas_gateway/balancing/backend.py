"""One backend of one model, as this replica sees it: its health, its requests in flight, its last load.

The pickers read it on every request, so everything a pick needs is a plain attribute; the background
pollers and the leases are what change it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from maas_gateway.balancing.health import HealthState, HealthTracker
from maas_gateway.balancing.load import LoadReading, LoadSample

__all__ = ["BackendSnapshot", "BackendState", "display_url"]


def display_url(url: str) -> str:
    """``url`` with its password, if it has one, replaced by ``***``: fit for logs and admin answers."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


@dataclass(frozen=True, slots=True)
class BackendSnapshot:
    """A backend's state for display (``/ready``, ``/admin/models``); times are seconds from ``now``."""

    url: str  # without its password
    weight: float
    state: HealthState
    reason: str | None
    ejected_for: float | None  # seconds left of the current ejection
    in_flight: int
    max_in_flight: int | None
    load: LoadSample | None
    load_age: float | None  # seconds since the load sample arrived
    load_error: str | None  # why the last scrape gave no sample, if it did not
    ejections: int

    def as_dict(self) -> dict[str, Any]:
        load = self.load
        return {
            "url": self.url,
            "weight": self.weight,
            "state": self.state.value,
            "reason": self.reason,
            "ejected_for": self.ejected_for,
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "load": None
            if load is None
            else {"waiting": load.waiting, "running": load.running, "kv_cache_usage": load.kv_cache_usage},
            "load_age": self.load_age,
            "load_error": self.load_error,
            "ejections": self.ejections,
        }


class BackendState:
    __slots__ = (
        "_in_flight",
        "_load",
        "_load_error",
        "_room_waiters",
        "_started",
        "health",
        "max_in_flight",
        "rendezvous_seed",
        "url",
        "weight",
    )

    def __init__(
        self,
        url: str,
        *,
        weight: float = 1.0,
        health: HealthTracker | None = None,
        max_in_flight: int | None = None,
    ) -> None:
        if not (math.isfinite(weight) and weight > 0):
            raise ValueError(f"A backend's weight must be a positive number, not {weight!r} ({url}).")
        if max_in_flight is not None and max_in_flight < 1:
            raise ValueError(
                f"A backend's max_in_flight must be at least 1, not {max_in_flight!r} ({display_url(url)})."
            )
        self.url = url
        self.weight = weight
        self.max_in_flight = max_in_flight
        self.health = health or HealthTracker()
        # Fixed per URL (without its password) so every replica maps an affinity key to the same backend.
        digest = hashlib.blake2b(display_url(url).encode("utf-8"), digest_size=8).digest()
        self.rendezvous_seed = int.from_bytes(digest, "big")
        self._in_flight = 0
        self._started = 0
        self._load: LoadReading | None = None
        self._load_error: str | None = None
        # Futures of requests waiting for any of their model's backends to have room (``room.py``).
        self._room_waiters: list[asyncio.Future[None]] = []

    def __repr__(self) -> str:
        return f"BackendState({display_url(self.url)!r}, weight={self.weight:g}, in_flight={self._in_flight})"

    @property
    def in_flight(self) -> int:
        """Requests this replica sent the backend that have not finished."""
        return self._in_flight

    @property
    def started(self) -> int:
        """Requests this replica ever sent the backend (it only grows)."""
        return self._started

    @property
    def load(self) -> LoadReading | None:
        return self._load

    def available(self, now: float) -> bool:
        return self.health.available(now)

    def has_room(self) -> bool:
        """Whether this replica may send the backend one more request (it is below its ``max_in_flight``)."""
        return self.max_in_flight is None or self._in_flight < self.max_in_flight

    def wake_on_room(self, waiter: asyncio.Future[None]) -> None:
        """Resolve ``waiter`` when one of this backend's requests ends (a waiter that is done is skipped)."""
        self._room_waiters.append(waiter)

    def forget_waiter(self, waiter: asyncio.Future[None]) -> None:
        with contextlib.suppress(ValueError):
            self._room_waiters.remove(waiter)

    def begin_request(self) -> None:
        """A request is sent to the backend (a ``Lease`` calls this)."""
        self._in_flight += 1
        self._started += 1

    def end_request(self) -> None:
        """A request sent to the backend finished, however it ended (a ``Lease`` calls this once)."""
        if self._in_flight > 0:
            self._in_flight -= 1
        if self._room_waiters:
            # Every waiter is woken and asks again: they are few (one process's line for one model), and
            # waking them all means a waiter that left meanwhile cannot swallow the wake-up of another.
            waiters, self._room_waiters = self._room_waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    def record_load(self, sample: LoadSample, *, at: float, started_before: int) -> None:
        """The backend reported ``sample`` at clock time ``at``, asked when ``started`` was
        ``started_before``."""
        self._load = LoadReading(sample, at, started_before)
        self._load_error = None

    def record_load_failure(self, reason: str) -> None:
        """The last scrape gave no sample; the previous one stays, and ages."""
        self._load_error = reason

    def snapshot(self, now: float) -> BackendSnapshot:
        ejected_until = self.health.ejected_until
        state = self.health.state(now)
        reading = self._load
        return BackendSnapshot(
            url=display_url(self.url),
            weight=self.weight,
            state=state,
            reason=self.health.reason(now),
            ejected_for=ejected_until - now
            if state is HealthState.EJECTED and ejected_until is not None
            else None,
            in_flight=self._in_flight,
            max_in_flight=self.max_in_flight,
            load=reading.sample if reading else None,
            load_age=now - reading.at if reading else None,
            load_error=self._load_error,
            ejections=self.health.ejections,
        )
