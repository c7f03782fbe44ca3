"""What the gateway learns about one request, for the access log and the usage ledger."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from maas_gateway.auth.identity import Identity
from maas_gateway.http.request_ids import new_request_id

__all__ = ["Exchange", "Usage", "new_request_id"]


@dataclass(slots=True)  # per request: a frozen dataclass costs 4x as much to build
class Usage:
    prompt_tokens: int
    completion_tokens: int
    estimated: bool = False
    cached_tokens: int = 0  # of the prompt, served from the backend's cache (priced apart)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @classmethod
    def from_backend(cls, usage: Any) -> Usage | None:
        """Read an OpenAI ``usage`` object; ``None`` when it is missing or malformed."""
        if not isinstance(usage, dict):
            return None
        prompt = usage.get("prompt_tokens")
        completion = usage.get("completion_tokens", 0)
        if completion is None:
            completion = 0
        if not isinstance(prompt, int) or not _count(prompt) or not _count(completion):
            return None
        details = usage.get("prompt_tokens_details")
        cached = details.get("cached_tokens") if isinstance(details, dict) else None
        cached_tokens = min(cached, prompt) if isinstance(cached, int) and _count(cached) else 0
        return cls(prompt, int(completion), cached_tokens=cached_tokens)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


@dataclass(slots=True)
class Exchange:
    request_id: str
    method: str
    path: str
    endpoint: str = ""  # the OpenAI path, without any routing prefix
    started: float = field(default_factory=time.perf_counter)
    created_at: float = field(default_factory=time.time)
    time_to_first_token: float | None = None
    admitted: bool = False  # passed authentication, authorization and limits: sent to a backend
    status: int = 0
    identity: Identity | None = None
    model: str | None = None
    served_model: str | None = None  # the model whose backend answered: ``model`` or a fallback of it
    stream: bool = False
    usage: Usage | None = None
    charged_tokens: int = 0
    output_clamped: str | None = None  # reserve mode lowered the output cap: "1024 -> 300"
    rate_limited: bool = False
    client_disconnected: bool = False
    response_started: bool = False
    error_code: str | None = None
    failed: bool = False  # admitted, then failed at the gateway or a backend: charged nothing
    broken: bool = False  # the backend broke its stream off mid-way: charged for what was delivered
    backend: str | None = None  # the base URL of the backend that served the request, as configured

    @property
    def latency_seconds(self) -> float:
        return time.perf_counter() - self.started
