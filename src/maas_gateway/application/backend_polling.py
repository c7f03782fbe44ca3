"""The background polls of the backends: health checks and, for queue-aware models, load scrapes.

They ask through the gateway's own upstream client (``TransportFetch``), with the TLS settings and
connect timeout of the requests, so a check sees what a request would see; its connections are a pool of
their own (``Services.poll_transport``), so a busy gateway's requests cannot make a check wait. Which
backends are polled, and how often, is the ``PollPlan`` of the configuration in force; a reload that
changes it restarts the polls (a backend's state is kept: only the loops are new).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from maas_gateway.balancing import (
    BackendPoller,
    FetchError,
    HealthChecker,
    LoadScraper,
    PollPlan,
    display_url,
)
from maas_gateway.errors import GatewayError
from maas_gateway.upstream import UpstreamRequest, UpstreamTransport

__all__ = ["BackendPolling", "TransportFetch"]

logger = logging.getLogger("maas_gateway.balancing")

_MAX_BODY = 4 * 1024 * 1024  # a vLLM /metrics answer is tens of kilobytes


class TransportFetch:
    """A ``balancing.Fetch`` over the upstream transport: ``GET url`` → (status, body)."""

    def __init__(self, transport: UpstreamTransport, max_body_bytes: int = _MAX_BODY) -> None:
        self._transport = transport
        self._max_body_bytes = max_body_bytes

    async def __call__(self, url: str) -> tuple[int, bytes]:
        try:
            response = await self._transport.send(UpstreamRequest("GET", url, (), b""))
        except GatewayError as exc:
            raise FetchError(f"{display_url(url)} cannot be fetched: {exc.message}") from None
        try:
            body = bytearray()
            async for chunk in response.iter_chunks():
                body += chunk
                if len(body) > self._max_body_bytes:
                    raise FetchError(f"{display_url(url)} answered more than {self._max_body_bytes} bytes.")
            return response.status, bytes(body)
        except GatewayError as exc:
            raise FetchError(f"{display_url(url)} broke off its answer: {exc.message}") from None
        finally:
            response.close()


class BackendPolling:
    """Runs one poller per entry of the plan in force, from ``start`` until ``stop``."""

    def __init__(self, transport: UpstreamTransport) -> None:
        self._fetch = TransportFetch(transport)
        self._plan: PollPlan = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._running = False

    @property
    def pollers(self) -> int:
        """How many poll loops run now."""
        return sum(not task.done() for task in self._tasks)

    def update(self, plan: PollPlan) -> None:
        """Poll as ``plan`` says from now on; an unchanged plan leaves the running polls alone."""
        if plan == self._plan:
            return
        self._plan = plan
        if self._running:
            self._cancel()
            self._launch()

    def start(self) -> None:
        self._running = True
        self._launch()

    async def stop(self) -> None:
        self._running = False
        tasks = self._cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _launch(self) -> None:
        loop = asyncio.get_running_loop()
        for (kind, timing), backends in self._plan.items():
            kind_of_poller: type[BackendPoller] = HealthChecker if kind == "health" else LoadScraper
            poller = kind_of_poller(backends, self._fetch, interval=timing.interval, timeout=timing.timeout)
            task = loop.create_task(poller.run(), name=f"backend-{kind}-poller")
            task.add_done_callback(_log_failure)
            self._tasks.append(task)

    def _cancel(self) -> list[asyncio.Task[None]]:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        return tasks


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and (error := task.exception()) is not None:
        logger.error("The background task %s failed.", task.get_name(), exc_info=error)
