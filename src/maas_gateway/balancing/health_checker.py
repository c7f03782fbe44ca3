"""The active health check: every ``interval``, ``GET <backend>/health``; a 2xx answer is healthy.

vLLM answers ``/health`` with 200 once its engine runs and with 503 when the engine has died; while the
model loads it does not listen at all. The results go to each backend's ``HealthTracker``, whose
thresholds decide when a backend changes state.
"""

from __future__ import annotations

from maas_gateway.balancing.backend import BackendState
from maas_gateway.balancing.fetch import FetchError
from maas_gateway.balancing.polling import BackendPoller

__all__ = ["HealthChecker"]


class HealthChecker(BackendPoller):
    path = "/health"

    async def poll(self, backend: BackendState) -> str | None:
        try:
            status, _ = await self.get(backend)
        except FetchError as exc:
            problem: str | None = f"The health check failed: {exc}"
        else:
            problem = None if 200 <= status < 300 else f"The health check answered HTTP {status}."
        backend.health.active_result(problem is None, problem or "")
        return problem
