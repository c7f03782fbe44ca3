"""Gateways for the inference API's tests: the demo in front of a backend, with an in-memory ledger the
admin API reads back, and helpers to read that ledger and the gateway's metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.support.ledger import ADMIN, ledger_config
from tests.support.limits import long_windows

__all__ = ["ADMIN", "endpoint_rows", "inference_config", "ledger_rows"]


def inference_config(backend: str, spool: Path, *, reserve_tier: str | None = None) -> dict[str, Any]:
    """The demo (limits on, windows 60 times as long) with a ledger in memory and the admin key; with
    ``reserve_tier``, that tier reserves 3 output tokens for requests that set no cap."""
    config = long_windows(ledger_config(backend, None, spool))
    if reserve_tier is not None:
        config["tiers"][reserve_tier]["reserve"] = True
        config["tiers"][reserve_tier]["reserve_default_max_tokens"] = 3
    return config


def ledger_rows(gateway_url: str, **params: str) -> list[dict[str, Any]]:
    response = httpx.get(gateway_url + "/admin/usage", params=params, headers=ADMIN, timeout=30)
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


def endpoint_rows(gateway_url: str, user: str) -> dict[str, dict[str, Any]]:
    """The ledger's totals for ``user``, by endpoint."""
    rows = ledger_rows(gateway_url, group_by="endpoint", user=user)
    return {row["endpoint"]: row for row in rows}
