"""A backend's load as its model server last reported it, and when."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LoadReading", "LoadSample"]


@dataclass(frozen=True, slots=True)
class LoadSample:
    """What a vLLM server reports about its queue: requests waiting for a slot, requests in the running
    batch, and the share of its KV cache in use (0-1; None when it does not report it)."""

    waiting: float
    running: float
    kv_cache_usage: float | None = None


@dataclass(frozen=True, slots=True)
class LoadReading:
    """A sample, the clock time it was received, and how many requests this replica had sent the backend
    when the sample was asked for: requests sent since are not in the sample yet."""

    sample: LoadSample
    at: float
    started_before: int
