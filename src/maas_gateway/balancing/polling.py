"""What the health checker and the load scraper share: a loop over a pool's backends, off the request path.

Each round asks every backend at once and waits for all (each ask bounded by ``timeout``), then sleeps
``interval``. Nothing a fetch or a backend does can end the loop: failures are recorded on the backend
and logged when a backend starts and stops failing, not on every round. The ``sleep`` is injected so a
test can run rounds without waiting.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence

from maas_gateway.balancing.backend import BackendState, display_url
from maas_gateway.balancing.fetch import Fetch, FetchError

__all__ = ["BackendPoller"]

logger = logging.getLogger("maas_gateway.balancing")


class BackendPoller(ABC):
    path: str  # appended to a backend's base URL

    def __init__(
        self,
        backends: Sequence[BackendState],
        fetch: Fetch,
        *,
        interval: float,
        timeout: float,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not (interval > 0 and timeout > 0):
            raise ValueError(f"A poller's interval and timeout must be positive ({interval!r}, {timeout!r}).")
        self.backends = tuple(backends)
        self.interval = interval
        self.timeout = timeout
        self._fetch = fetch
        self._sleep = sleep
        self._failing: set[BackendState] = set()
        self.rounds = 0

    async def run(self) -> None:
        """Poll until cancelled."""
        while True:
            await self.poll_once()
            await self._sleep(self.interval)

    async def poll_once(self) -> None:
        """Ask every backend once, concurrently; return when all have answered or timed out."""
        await asyncio.gather(*(self._poll_safely(backend) for backend in self.backends))
        self.rounds += 1

    @abstractmethod
    async def poll(self, backend: BackendState) -> str | None:
        """Ask ``backend`` and record what it said; return why it did not answer as it should (a
        sentence), or None when it did."""

    async def get(self, backend: BackendState) -> tuple[int, bytes]:
        """Fetch ``backend``'s ``path``; raise ``FetchError`` with a sentence when there is no answer."""
        url = backend.url.rstrip("/") + self.path
        try:
            async with asyncio.timeout(self.timeout):
                return await self._fetch(url)
        except FetchError:
            raise
        except TimeoutError:
            raise FetchError(f"{display_url(url)} did not answer within {self.timeout:g} s.") from None
        except Exception as exc:  # noqa: BLE001  # any failure of any fetch is "no answer", never the loop's end
            raise FetchError(f"{display_url(url)} cannot be fetched ({type(exc).__name__}).") from None

    async def _poll_safely(self, backend: BackendState) -> None:
        shown = display_url(backend.url) + self.path
        try:
            problem = await self.poll(backend)
        except Exception:  # a bug in one poll must not stop the polling of every backend
            logger.exception("Polling %s failed unexpectedly.", shown)
            problem = "The poll failed unexpectedly."
        if problem is None and backend in self._failing:
            self._failing.discard(backend)
            logger.info("%s answers again.", shown)
        elif problem is not None and backend not in self._failing:
            self._failing.add(backend)
            logger.warning("%s fails (%s); polling goes on.", shown, problem)
