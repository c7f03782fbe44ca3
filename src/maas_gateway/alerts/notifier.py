"""From the limiter's readings to alerts in the outbox.

``observe`` runs on the request path, so it only compares numbers and queues: for each budget (user,
limit, window) it remembers the highest usage it has handled, and ``crossed_thresholds`` between that and
the new reading says which thresholds are new. This is level-triggered, not per charge: a threshold
crossed by a reservation that a later charge replaced, or by another replica, is still seen by the next
reading at or above it, so none is missed; repeats are harmless because the outbox stores an alert once.

``run`` (a background task) writes the queue to the outbox. A write that fails (the database is down) is
tried again, in order, until it succeeds: an alert is only lost if the process dies with it queued, and
then the budget's next reading in the same window queues it again (a new process remembers nothing).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence

from maas_gateway.alerts.events import AlertEvent
from maas_gateway.alerts.metrics import AlertMetrics
from maas_gateway.alerts.outbox import AlertOutbox
from maas_gateway.alerts.thresholds import ThresholdPolicy, crossed_thresholds, next_threshold_usage
from maas_gateway.limits.readings import CounterReading

__all__ = ["AlertNotifier"]

logger = logging.getLogger("maas_gateway.alerts")

_SWEEP_EVERY = 10_000  # readings between two sweeps of budgets whose window has ended


class AlertNotifier:
    def __init__(
        self,
        outbox: AlertOutbox,
        policy: ThresholdPolicy,
        webhooks: Sequence[str],
        *,
        metrics: AlertMetrics | None = None,
        stored: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
        retry_interval: float = 1.0,
    ) -> None:
        """``stored`` is called after an alert was stored (the sender's wake-up)."""
        self._outbox = outbox
        self._policy = policy
        self._webhooks = tuple(webhooks)
        self._metrics = metrics
        self._stored = stored
        self._clock = clock
        self._retry_interval = retry_interval
        # (user, limit, window start) -> (usage that reaches the next threshold, highest usage handled,
        # window end): most readings are below the next threshold and cost one comparison.
        self._handled: dict[tuple[str, str, float], tuple[float, int, float]] = {}
        self._queue: deque[AlertEvent] = deque()
        self._ready = asyncio.Event()
        self._readings = 0
        self._outbox_down = False  # warned once per outage, not once per retry

    @property
    def queued(self) -> int:
        return len(self._queue)

    def observe(self, readings: Sequence[CounterReading]) -> None:
        """The limiter's hook (``UsageObserver``): queue an alert for each threshold newly reached."""
        for reading in readings:
            key = (reading.user, reading.limit_key, reading.window_start)
            handled = self._handled.get(key)
            if handled is not None and reading.used < handled[0]:
                continue
            before = 0 if handled is None else handled[1]
            thresholds = self._policy.thresholds(reading.tier, reading.unit, reading.window)
            for threshold in crossed_thresholds(before, reading.used, reading.limit, thresholds):
                self._queue_alerts(reading, threshold)
            upcoming = next_threshold_usage(reading.used, reading.limit, thresholds)
            self._handled[key] = (upcoming, reading.used, reading.window_end)
        self._readings += 1
        if self._readings % _SWEEP_EVERY == 0:
            self._forget_ended()

    def _queue_alerts(self, reading: CounterReading, threshold: int) -> None:
        now = self._clock()
        for webhook in self._webhooks:
            self._queue.append(
                AlertEvent(
                    alert_id=str(uuid.uuid4()),
                    webhook=webhook,
                    user=reading.user,
                    tier=reading.tier,
                    limit_key=reading.limit_key,
                    limit=reading.limit,
                    unit=reading.unit,
                    window=reading.window,
                    window_start=int(reading.window_start),
                    window_end=int(reading.window_end),
                    threshold=threshold,
                    used=reading.used,
                    created_at=now,
                )
            )
        self._ready.set()

    def _forget_ended(self) -> None:
        now = self._clock()
        for key in [key for key, (_, _, end) in self._handled.items() if end <= now]:
            del self._handled[key]

    async def store_queued(self) -> None:
        """Write every queued alert to the outbox, in order; raises (keeping the rest) if one fails."""
        while self._queue:
            event = self._queue[0]
            stored = await self._outbox.enqueue(event)
            self._queue.popleft()
            if stored:
                self._fired(event)

    async def run(self) -> None:
        while True:
            await self._ready.wait()
            self._ready.clear()
            try:
                await self.store_queued()
            except Exception as exc:  # noqa: BLE001  # any database failure: keep them queued, retry
                if not self._outbox_down:
                    logger.warning(
                        "Budget alerts could not be stored in the outbox (%s); they wait in memory and are "
                        "tried again every %g s.",
                        type(exc).__name__,
                        self._retry_interval,
                    )
                self._outbox_down = True
                await asyncio.sleep(self._retry_interval)
                self._ready.set()
            else:
                if self._outbox_down:
                    logger.info("Budget alerts are stored in the outbox again.")
                self._outbox_down = False

    def _fired(self, event: AlertEvent) -> None:
        logger.info(
            "Budget alert %s: user '%s' (tier %s) reached %d %% of the limit %s: %d of %d %s in the window "
            "starting %d; queued for the webhook '%s'.",
            event.alert_id,
            event.user,
            event.tier,
            event.threshold,
            event.limit_key,
            event.used,
            event.limit,
            event.unit,
            event.window_start,
            event.webhook,
        )
        if self._metrics is not None:
            self._metrics.fired(event.webhook, event.threshold)
        self._stored()
