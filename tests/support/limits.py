"""Helpers for tests of limits over HTTP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import httpx

from maas_gateway.config.durations import CALENDAR_WINDOWS, format_duration, parse_duration

__all__ = ["HOUR", "chat", "concurrent_statuses", "long_windows", "wait_for_fresh_window"]

HOUR = 3600.0


def long_windows(config: dict[str, Any]) -> dict[str, Any]:
    """Make every tier's limit windows 60 times as long (2m: 2h, 1m: 1h, 1h: 60h, 1d: 60d), in place.

    Windows are aligned to the epoch, so a test that counts up to a limit must not straddle a boundary.
    With the demo's windows stretched like this every boundary falls on the hour, and
    ``wait_for_fresh_window(HOUR)`` sleeps only in the last seconds of an hour, where minute windows make
    it sleep up to 12 s one run in five. Limits and their order stay; distinct windows stay distinct (two
    rules of one unit and window would share a counter).
    """
    for tier in config["tiers"].values():
        for limit in tier.get("limits", []):
            if limit["window"] in CALENDAR_WINDOWS:
                continue  # a calendar day, week or month is long already
            limit["window"] = format_duration(parse_duration(limit["window"]) * 60)
    return config


def wait_for_fresh_window(window: float = 60.0, needed: float = 12.0) -> None:
    """Sleep into the next window if fewer than ``needed`` seconds are left in the current one.

    Limit windows are aligned to the epoch, so a test that counts to a limit must not straddle a boundary.
    Pass ``HOUR`` for a configuration made with ``long_windows``: then it almost never sleeps.
    """
    left = window - (time.time() % window)
    if left < needed:
        time.sleep(left + 0.05)


def chat(url: str, key: str, *, model: str = "simulator-model", **extra: Any) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "Hello"}], **extra}
    return httpx.post(
        url + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30
    )


def concurrent_statuses(url: str, keys: Sequence[str], **extra: Any) -> list[int]:
    """Send one chat request per key, all at once, and return the statuses."""

    async def run() -> list[int]:
        limits = httpx.Limits(max_connections=len(keys), max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
            body = {"model": "simulator-model", "messages": [{"role": "user", "content": "Hi"}], **extra}

            async def one(key: str) -> int:
                response = await client.post(
                    "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
                )
                return response.status_code

            return list(await asyncio.gather(*(one(key) for key in keys)))

    return asyncio.run(run())
