"""The simulator's load, as vLLM's ``/metrics`` reports it: so the gateway's queue-aware balancing and its
load scraper can be exercised without a GPU.

Per model: ``vllm:num_requests_running`` (generations in progress, streams until their last event),
``vllm:num_requests_waiting`` (always 0: the simulator never queues) and the counter
``vllm:request_success_total`` (generations answered whole). No KV cache gauge: the simulator has none,
and the gateway's parser does without it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

__all__ = ["ServerLoad"]


class ServerLoad:
    def __init__(self, models: Sequence[str]) -> None:
        self.running = dict.fromkeys(models, 0)
        self.succeeded = dict.fromkeys(models, 0)

    def started(self, model: str) -> None:
        self.running[model] = self.running.get(model, 0) + 1

    def ended(self, model: str, *, whole: bool) -> None:
        self.running[model] = max(0, self.running.get(model, 0) - 1)
        if whole:
            self.succeeded[model] = self.succeeded.get(model, 0) + 1

    async def tracked(self, model: str, stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """``stream``, counted as running from its first event until its end."""
        self.started(model)
        whole = False
        try:
            async for event in stream:
                yield event
            whole = True
        finally:
            self.ended(model, whole=whole)

    def text(self) -> str:
        """The Prometheus text of ``/metrics``."""
        lines = [
            "# HELP vllm:num_requests_running Number of requests in model execution batches.",
            "# TYPE vllm:num_requests_running gauge",
            *(f'vllm:num_requests_running{{model_name="{m}"}} {n}' for m, n in self.running.items()),
            "# HELP vllm:num_requests_waiting Number of requests waiting to be processed.",
            "# TYPE vllm:num_requests_waiting gauge",
            *(f'vllm:num_requests_waiting{{model_name="{m}"}} 0' for m in self.running),
            "# HELP vllm:request_success_total Count of successfully processed requests.",
            "# TYPE vllm:request_success_total counter",
            *(f'vllm:request_success_total{{model_name="{m}"}} {n}' for m, n in self.succeeded.items()),
        ]
        return "\n".join(lines) + "\n"
