"""Delivering alerts from the outbox to their webhooks: signed POSTs, retried with backoff.

Each round claims the alerts that are due (under a lease, so replicas never send one at the same time)
and sends them at once. An answer 2xx marks the alert delivered; a failure to connect, a timeout, 408,
429 or 5xx is tried again after the schedule's wait, until its last attempt; any other answer (a 4xx:
the webhook refuses it, a bad signature say) gives it up at once. A sender that dies mid-way leaves
its alerts claimed until the lease ends; then any replica sends them again. Receivers drop repeats by
``x-maas-alert-id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from maas_gateway.alerts.backoff import RetrySchedule
from maas_gateway.alerts.events import ClaimedAlert
from maas_gateway.alerts.metrics import AlertMetrics
from maas_gateway.alerts.outbox import AlertOutbox
from maas_gateway.alerts.payload import alert_payload
from maas_gateway.alerts.signing import signed_headers

__all__ = ["AlertSender", "Post", "WebhookTarget"]

logger = logging.getLogger("maas_gateway.alerts")

Post = Callable[[str, bytes, Mapping[str, str], float], Awaitable[int]]
"""POST ``body`` with ``headers`` to a URL within a timeout; the answer's status. Raises ``OSError``,
``TimeoutError`` or the client's own transport error when no answer came."""

_RETRIED_STATUSES = frozenset({408, 429})


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    name: str
    url: str = field(repr=False)  # a webhook URL may carry a token of its own: never in logs
    secret: bytes = field(repr=False)
    timeout: float


class AlertSender:
    def __init__(
        self,
        outbox: AlertOutbox,
        targets: Mapping[str, WebhookTarget],
        post: Post,
        schedule: RetrySchedule,
        *,
        lease: float,
        poll_interval: float,
        batch: int = 20,
        metrics: AlertMetrics | None = None,
        clock: Callable[[], float] = time.time,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._outbox = outbox
        self._targets = dict(targets)
        self._post = post
        self._schedule = schedule
        self._lease = lease
        self._poll_interval = poll_interval
        self._batch = batch
        self._metrics = metrics
        self._clock = clock
        self._jitter = jitter
        self._wake = asyncio.Event()
        self._outbox_down = False  # warned once per outage, not once per poll

    def wake(self) -> None:
        """Look for due alerts now rather than at the next poll (an alert was just stored)."""
        self._wake.set()

    async def run(self) -> None:
        while True:
            try:
                sent = await self.send_due()
            except Exception as exc:  # noqa: BLE001  # any database failure: the next round retries
                if not self._outbox_down:
                    logger.warning(
                        "The alert outbox could not be read (%s); alerts wait there, and it is tried "
                        "again every %g s.",
                        type(exc).__name__,
                        self._poll_interval,
                    )
                self._outbox_down = True
                sent = 0
            else:
                if self._outbox_down:
                    logger.info("The alert outbox can be read again; due alerts are being sent.")
                self._outbox_down = False
            if sent >= self._batch:
                continue  # more may be due
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll_interval):
                    await self._wake.wait()
            self._wake.clear()

    async def send_due(self) -> int:
        """One round: claim what is due, send it all, settle each; how many alerts were claimed."""
        claimed = await self._outbox.claim(self._clock(), self._lease, self._batch)
        if claimed:
            await asyncio.gather(*(self._deliver(alert) for alert in claimed))
        return len(claimed)

    async def _deliver(self, claimed: ClaimedAlert) -> None:
        event = claimed.event
        target = self._targets.get(event.webhook)
        if target is None:
            await self._give_up(claimed, f"The webhook '{event.webhook}' is no longer configured.")
            return
        body = alert_payload(event)
        headers = signed_headers(target.secret, body, self._clock(), event.alert_id)
        try:
            status = await self._post(target.url, body, headers, target.timeout)
        except Exception as exc:  # noqa: BLE001  # no answer, whatever the cause: worth a retry
            await self._failed(claimed, f"The webhook could not be reached ({type(exc).__name__}).")
            return
        if 200 <= status < 300:
            if await self._outbox.delivered(claimed, self._clock()):
                logger.info(
                    "Budget alert %s delivered to the webhook '%s' (attempt %d).",
                    event.alert_id,
                    event.webhook,
                    claimed.attempt,
                )
                if self._metrics is not None:
                    self._metrics.delivered(event.webhook)
            return
        error = f"The webhook answered {status}."
        if status in _RETRIED_STATUSES or status >= 500:
            await self._failed(claimed, error)
        else:
            await self._give_up(claimed, f"{error[:-1]}, refusing the alert; it is not sent again.")

    async def _failed(self, claimed: ClaimedAlert, error: str) -> None:
        if self._metrics is not None:
            self._metrics.attempt_failed(claimed.event.webhook)
        if self._schedule.exhausted(claimed.attempt):
            await self._give_up(claimed, f"{error} That was attempt {claimed.attempt}, the last.")
            return
        wait = self._schedule.delay(claimed.attempt, self._jitter)
        if await self._outbox.retry_at(claimed, self._clock() + wait, error):
            logger.warning(
                "Budget alert %s for the webhook '%s', attempt %d: %s Trying again in %.1f s.",
                claimed.event.alert_id,
                claimed.event.webhook,
                claimed.attempt,
                error,
                wait,
            )

    async def _give_up(self, claimed: ClaimedAlert, error: str) -> None:
        if await self._outbox.give_up(claimed, self._clock(), error):
            logger.error(
                "Budget alert %s for the webhook '%s' was given up: %s",
                claimed.event.alert_id,
                claimed.event.webhook,
                error,
            )
            if self._metrics is not None:
                self._metrics.failed(claimed.event.webhook)
