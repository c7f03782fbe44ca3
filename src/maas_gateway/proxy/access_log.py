"""One structured line per request: who, which model, what status, how many tokens, how long.

Lines are JSON so log pipelines can index them. They never contain credentials: only the key's public id.
"""

from __future__ import annotations

import logging

import orjson

from maas_gateway.proxy.exchange import Exchange

__all__ = ["AccessLog"]

logger = logging.getLogger("maas_gateway.access")


class AccessLog:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def record(self, exchange: Exchange) -> None:
        if not self.enabled or not logger.isEnabledFor(logging.INFO):
            return
        identity = exchange.identity
        usage = exchange.usage
        line = {
            "event": "request",
            "request_id": exchange.request_id,
            "method": exchange.method,
            "path": exchange.path,
            "status": exchange.status,
            "user": identity.user if identity else None,
            "tier": identity.tier if identity else None,
            "key_id": identity.key_id if identity else None,
            "model": exchange.model,
            "stream": exchange.stream,
            "prompt_tokens": usage.prompt_tokens if usage else 0,
            "completion_tokens": usage.completion_tokens if usage else 0,
            "total_tokens": usage.total_tokens if usage else 0,
            "usage_estimated": usage.estimated if usage else False,
            "charged_tokens": exchange.charged_tokens,
            "rate_limited": exchange.rate_limited,
            "client_disconnected": exchange.client_disconnected,
            "error": exchange.error_code,
            "latency_ms": round(exchange.latency_seconds * 1000, 3),
        }
        logger.info(orjson.dumps(line).decode())
