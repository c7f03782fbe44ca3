"""Where a finished request goes: the access log, the Prometheus metrics and the usage ledger.

Called once per request after the answer is sent, so none of it adds to the client's latency.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

from maas_gateway.balancing import display_url
from maas_gateway.metering import LedgerWriter, UsageRecord
from maas_gateway.metrics import GatewayMetrics
from maas_gateway.pricing import PriceSchedule
from maas_gateway.proxy.access_log import AccessLog
from maas_gateway.proxy.exchange import Exchange

__all__ = ["ExchangeObservers"]

# A backend's URL as the ledger stores it: without a password (a configured few, so the cache stays small).
_shown = lru_cache(maxsize=1024)(display_url)

_BACKEND_FAILURES = frozenset({"bad_gateway", "backend_unavailable", "backend_timeout", "model_overloaded"})


class ExchangeObservers:
    """Built per configuration snapshot (the prices change on reload); the sinks are shared."""

    def __init__(
        self,
        access_log: AccessLog,
        metrics: GatewayMetrics | None,
        ledger: LedgerWriter | None,
        prices: Mapping[str, PriceSchedule],
    ) -> None:
        self.access_log = access_log
        self.metrics = metrics
        self.ledger = ledger
        self.prices = dict(prices)

    def finished(self, exchange: Exchange) -> None:
        self.access_log.record(exchange)
        if exchange.identity is None or not exchange.endpoint:
            return  # unauthenticated or not a model call: nobody to meter
        if self.metrics is not None:
            self._observe(exchange)
        if self.ledger is not None:
            self.ledger.submit(self.record(exchange))

    def record(self, exchange: Exchange) -> UsageRecord:
        identity = exchange.identity
        assert identity is not None
        usage = exchange.usage
        prompt = usage.prompt_tokens if usage else 0
        completion = usage.completion_tokens if usage else 0
        cached = usage.cached_tokens if usage else 0
        schedule = self.prices.get(exchange.model or "")
        # The version in effect when the request arrived: the one its limits were charged at.
        price = schedule.at(exchange.created_at) if schedule is not None else None
        return UsageRecord(
            request_id=exchange.request_id,
            created_at=exchange.created_at,
            user=identity.user,
            tier=identity.tier,
            key_id=identity.key_id,
            model=exchange.model,
            endpoint=exchange.endpoint,
            status=exchange.status,
            prompt_tokens=prompt,
            completion_tokens=completion,
            total_tokens=prompt + completion,
            charged_tokens=exchange.charged_tokens,
            cost=price.cost(prompt, completion, cached) if price else 0.0,
            streamed=exchange.stream,
            rate_limited=exchange.rate_limited,
            usage_estimated=usage.estimated if usage else False,
            latency_ms=round(exchange.latency_seconds * 1000, 3),
            failed=exchange.failed,
            broken=exchange.broken,
            backend=_shown(exchange.backend) if exchange.backend is not None else None,
            price_version=price.name if price else "",
            team=identity.team or "",
        )

    def _observe(self, exchange: Exchange) -> None:
        assert self.metrics is not None
        identity = exchange.identity
        assert identity is not None
        usage = exchange.usage
        self.metrics.record(
            user=identity.user,
            tier=identity.tier,
            model=exchange.model or "",
            endpoint=exchange.endpoint,
            status=exchange.status,
            admitted=exchange.admitted,
            rate_limited=exchange.rate_limited,
            tokens=(usage.prompt_tokens, usage.completion_tokens, exchange.charged_tokens) if usage else None,
            latency=exchange.latency_seconds,
            time_to_first_token=exchange.time_to_first_token,
            backend_error=exchange.error_code if exchange.error_code in _BACKEND_FAILURES else None,
        )
