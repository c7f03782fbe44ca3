"""Whether one backend may take requests: an active health check's verdict and passive outlier ejection.

Two signals, kept apart because they mean different things:

- **Active** (``active_result``): a background check of the backend's ``/health``. The first result
  decides at once (nothing is known before it); afterwards ``unhealthy_threshold`` failures in a row
  mark the backend unhealthy and ``healthy_threshold`` successes in a row mark it healthy again, so one
  lost probe does not flap it.
- **Passive** (``passive_failure``/``passive_success``): the outcomes of real requests.
  ``consecutive_failures`` connection failures or 5xx answers in a row eject the backend for
  ``base_ejection`` seconds. A backend that comes back is on probation: one more failure ejects it again
  for twice as long (up to ``max_ejection``), until ``recovery_successes`` successes in a row show it has
  recovered, which forgets its past ejections.

Ejection ends by time alone: a passing ``/health`` does not end it early, since vLLM answers ``/health``
while it fails requests (an engine out of memory, a broken adapter).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["FailureKind", "HealthPolicy", "HealthState", "HealthTracker"]

# 2**32 times any base ejection is already far above any sensible cap; beyond it floats would overflow.
_MAX_DOUBLINGS = 32


class HealthState(StrEnum):
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"  # the active health check says so
    EJECTED = "ejected"  # real requests failed; out until ``ejected_until``


class FailureKind(StrEnum):
    CONNECT = "connect"  # no connection, or it failed before any byte of the request was sent
    SERVER_ERROR = "5xx"  # the backend answered with a 5xx status

    @property
    def described(self) -> str:
        """What a request of this kind did, to end a sentence that starts with the request."""
        return "could not connect" if self is FailureKind.CONNECT else "got a 5xx answer"


@dataclass(frozen=True, slots=True)
class HealthPolicy:
    """The thresholds and ejection times of ``HealthTracker``; times in seconds."""

    healthy_threshold: int = 2
    unhealthy_threshold: int = 3
    consecutive_failures: int = 5
    base_ejection: float = 10.0
    max_ejection: float = 300.0
    recovery_successes: int = 5

    def __post_init__(self) -> None:
        counts = {
            "healthy_threshold": self.healthy_threshold,
            "unhealthy_threshold": self.unhealthy_threshold,
            "consecutive_failures": self.consecutive_failures,
            "recovery_successes": self.recovery_successes,
        }
        for name, count in counts.items():
            if count < 1:
                raise ValueError(f"The health policy's {name} must be at least 1, not {count}.")
        if not 0 < self.base_ejection <= self.max_ejection or not math.isfinite(self.max_ejection):
            raise ValueError(
                "The health policy's base_ejection must be positive and at most max_ejection, "
                f"which must be finite (they are {self.base_ejection:g} and {self.max_ejection:g})."
            )


class HealthTracker:
    """The health of one backend; cheap to ask (``available``), updated by checks and by requests."""

    def __init__(
        self, policy: HealthPolicy | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.policy = policy or HealthPolicy()
        self._clock = clock
        # Active health check.
        self._checked = False
        self._active_healthy = True  # presumed until the first check: a gateway must serve at start
        self._contrary_results = 0  # results in a row that disagree with the current verdict
        self._active_reason: str | None = None
        # Passive outlier detection.
        self._failures_in_a_row = 0
        self._ejected_until = -math.inf
        self._ejection_streak = 0  # ejections not yet forgiven by ``recovery_successes`` successes
        self._successes_since_return = 0
        self._ejection_reason: str | None = None
        # Counters, for metrics: they only grow.
        self.ejections_by_kind: dict[FailureKind, int] = dict.fromkeys(FailureKind, 0)
        self.marked_unhealthy = 0

    @property
    def ejections(self) -> int:
        return sum(self.ejections_by_kind.values())

    @property
    def ejected_until(self) -> float | None:
        """The clock time at which the current or last ejection ends; None if never ejected."""
        return None if self._ejected_until == -math.inf else self._ejected_until

    @property
    def on_probation(self) -> bool:
        """Ejected before and not yet recovered: the next failure ejects it again, for longer."""
        return self._ejection_streak > 0

    def available(self, now: float) -> bool:
        """May the backend take a new request at clock time ``now``?"""
        return self._active_healthy and now >= self._ejected_until

    def state(self, now: float) -> HealthState:
        if now < self._ejected_until:
            return HealthState.EJECTED
        return HealthState.HEALTHY if self._active_healthy else HealthState.UNHEALTHY

    def reason(self, now: float) -> str | None:
        """Why the backend is not healthy at ``now``, as a sentence; None when it is healthy."""
        state = self.state(now)
        if state is HealthState.EJECTED:
            return self._ejection_reason
        return self._active_reason if state is HealthState.UNHEALTHY else None

    def active_result(self, ok: bool, detail: str = "") -> None:
        """One active health check's result; ``detail`` says what failed, as a sentence."""
        if not ok:
            self._active_reason = detail or "The health check failed."
        if not self._checked:
            self._checked = True
            self._set_active(ok)
            return
        if ok == self._active_healthy:
            self._contrary_results = 0
            return
        self._contrary_results += 1
        threshold = self.policy.healthy_threshold if ok else self.policy.unhealthy_threshold
        if self._contrary_results >= threshold:
            self._set_active(ok)

    def passive_failure(self, kind: FailureKind) -> None:
        """A request to the backend failed: its connection did, or it answered 5xx."""
        now = self._clock()
        if now < self._ejected_until:
            return  # a request sent before the ejection: it is out already, and its clock keeps running
        self._successes_since_return = 0
        self._failures_in_a_row += 1
        if self.on_probation:
            self._eject(now, kind, f"A request {kind.described} soon after an ejection ended")
        elif self._failures_in_a_row >= self.policy.consecutive_failures:
            count = self._failures_in_a_row
            many = f"{count} requests in a row failed (the last {kind.described})"
            self._eject(now, kind, many if count > 1 else f"A request {kind.described}")

    def passive_success(self) -> None:
        """A request to the backend was answered without a connection failure or a 5xx."""
        if self._clock() < self._ejected_until:
            return  # an answer to a request sent before the ejection does not end it
        self._failures_in_a_row = 0
        if self.on_probation:
            self._successes_since_return += 1
            if self._successes_since_return >= self.policy.recovery_successes:
                self._ejection_streak = 0
                self._successes_since_return = 0

    def _set_active(self, healthy: bool) -> None:
        if self._active_healthy and not healthy:
            self.marked_unhealthy += 1
        self._active_healthy = healthy
        self._contrary_results = 0

    def _eject(self, now: float, kind: FailureKind, cause: str) -> None:
        doublings = min(self._ejection_streak, _MAX_DOUBLINGS)
        duration = min(self.policy.base_ejection * 2**doublings, self.policy.max_ejection)
        self._ejected_until = now + duration
        self._ejection_streak += 1
        self._failures_in_a_row = 0
        self.ejections_by_kind[kind] += 1
        self._ejection_reason = f"{cause}; ejected for {duration:g} s."
