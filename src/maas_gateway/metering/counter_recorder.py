"""The background reads of the backends' own token counters, stored for reconciliation.

Every ``interval`` (a minute by default) each distinct backend of the configuration in force is asked
for its ``/metrics`` once, through the same upstream client as the balancing polls (``Fetch``), and its
``vllm:prompt_tokens_total`` and ``vllm:generation_tokens_total`` per model are stored with the time of
the scrape. A backend that does not answer is logged when it starts and stops failing, not every round;
its readings simply miss, which widens the period the next reconciliation compares.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable

from maas_gateway.balancing import display_url
from maas_gateway.balancing.fetch import Fetch
from maas_gateway.balancing.vllm_metrics import MetricsFormatError
from maas_gateway.metering.readings import BackendReading, BackendReadings
from maas_gateway.metering.token_counters import parse_token_counters

__all__ = ["CounterRecorder"]

logger = logging.getLogger("maas_gateway.ledger")

MAX_MODELS_PER_BACKEND = 64  # a vLLM server serves one; a backend naming thousands must not flood the table


class CounterRecorder:
    def __init__(
        self,
        readings: BackendReadings,
        fetch: Fetch,
        backends: Callable[[], Iterable[str]],
        *,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.readings = readings
        self._fetch = fetch
        self._backends = backends
        self.timeout = timeout
        self._clock = clock
        self._failing: set[str] = set()

    async def run(
        self, interval: Callable[[], float], after_round: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        """Read every ``interval()`` seconds until cancelled; ``after_round`` runs after each round."""
        while True:
            try:
                await self.read_once()
                if after_round is not None:
                    await after_round()
            except Exception:  # a database error must not end the readings for good
                logger.exception("Reading the backends' token counters failed; trying again later.")
            await asyncio.sleep(interval())

    async def read_once(self) -> list[BackendReading]:
        """Read every backend once, concurrently, and store what they said; return the readings."""
        urls = sorted(set(self._backends()))
        answers = await asyncio.gather(*(self._read(url) for url in urls))
        readings = [reading for answer in answers for reading in answer]
        await self.readings.record(readings)
        return readings

    async def _read(self, url: str) -> list[BackendReading]:
        shown = display_url(url)
        try:
            async with asyncio.timeout(self.timeout):
                status, body = await self._fetch(url.rstrip("/") + "/metrics")
            at = self._clock()
            if status != 200:
                raise MetricsFormatError(f"The metrics answered HTTP {status}.")
            counters = parse_token_counters(body.decode("utf-8", errors="replace"))
        except Exception as exc:  # noqa: BLE001  # no answer, whatever the reason: a missed reading
            if shown not in self._failing:
                self._failing.add(shown)
                logger.warning(
                    "The token counters of %s cannot be read (%s); reconciliation skips it.", shown, exc
                )
            return []
        if shown in self._failing:
            self._failing.discard(shown)
            logger.info("The token counters of %s are read again.", shown)
        if len(counters) > MAX_MODELS_PER_BACKEND:
            logger.warning(
                "%s reports token counters for %d models; only the first %d by name are recorded.",
                shown,
                len(counters),
                MAX_MODELS_PER_BACKEND,
            )
        return [
            BackendReading(shown, model[:200], at, values.prompt_tokens, values.generation_tokens)
            for model, values in sorted(counters.items())[:MAX_MODELS_PER_BACKEND]
        ]
