"""The load scraper: every ``interval`` (100-500 ms), ``GET <backend>/metrics``, kept as a load sample.

Each sample is stored on its backend with the time it arrived, for ``QueueAware`` to read; a failed
scrape leaves the last sample in place to age (the picker stops trusting it after ``stale_after``) and
says why on the backend, for ``/admin/models``. ``model`` is the name the backends serve the model under,
which vLLM puts in its ``model_name`` label.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

from maas_gateway.balancing.backend import BackendState
from maas_gateway.balancing.fetch import Fetch, FetchError
from maas_gateway.balancing.polling import BackendPoller
from maas_gateway.balancing.vllm_metrics import MetricsFormatError, parse_vllm_load

__all__ = ["LoadScraper"]


class LoadScraper(BackendPoller):
    path = "/metrics"

    def __init__(
        self,
        backends: Sequence[BackendState],
        fetch: Fetch,
        *,
        interval: float,
        timeout: float,
        model: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        super().__init__(backends, fetch, interval=interval, timeout=timeout, sleep=sleep)
        self.model = model
        self._clock = clock

    async def poll(self, backend: BackendState) -> str | None:
        started_before = backend.started  # requests sent from now on cannot be in the answer
        try:
            status, body = await self.get(backend)
            if status != 200:
                raise FetchError(f"The metrics answered HTTP {status}.")
            sample = parse_vllm_load(body.decode("utf-8", errors="replace"), self.model)
        except (FetchError, MetricsFormatError) as exc:
            problem = str(exc)
        else:
            if sample is not None:
                backend.record_load(sample, at=self._clock(), started_before=started_before)
                return None
            problem = "The metrics have no vLLM queue gauges" + (
                f" for the model '{self.model}'." if self.model else "."
            )
        backend.record_load_failure(problem)
        return problem
