"""Budget alerts in the real application, in one process: the gateway over ``InMemoryTransport`` (no
backend socket), no database (the outbox in memory), and the receiver of tests/support on loopback.

The limiter's readings reach the notifier on every answered request; the alerts are delivered signed;
reservations alone never fire an alert (only what was charged counts); and a gateway without a database
fires each threshold once in its process.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson
import pytest
import yaml
from aiohttp import web

from maas_gateway.application import Application
from maas_gateway.config import demo_config_text, parse_config
from maas_gateway.upstream import InMemoryTransport, MemoryAnswer, UpstreamRequest
from tests.support.polling import wait_until_async
from tests.support.processes import free_port
from tests.support.webhook_receiver import build, reset, state

SECRET = "in-process-secret-0123456789"
USAGE = {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}


async def _backend(request: UpstreamRequest) -> MemoryAnswer:
    body = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi!"}}], "usage": USAGE}
    return MemoryAnswer(200, [("content-type", "application/json")], orjson.dumps(body))


def _config(receiver_url: str, tier: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = copy.deepcopy(yaml.safe_load(demo_config_text()))
    data["server"]["access_log"] = False
    data["metrics"] = {"enabled": True}
    data["tiers"]["metered"] = tier
    data["api_keys"].append({"user": "dave", "tier": "metered", "key": "dave_key"})
    data["alerts"] = {
        "enabled": True,
        "webhooks": [{"name": "ops", "url": receiver_url + "/hook", "secret_env": "MAAS_ALERTS_TEST_SECRET"}],
        "poll_interval": "0.05s",
    }
    return data


Scenario = Callable[[httpx.AsyncClient, Application, Callable[[], list[dict[str, Any]]]], Awaitable[None]]


def _run(tier: dict[str, Any], scenario: Scenario) -> None:
    async def main() -> None:
        reset()
        runner = web.AppRunner(build(SECRET.encode()))
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        application = Application(
            parse_config(_config(f"http://127.0.0.1:{port}", tier)), transport=InMemoryTransport(_backend)
        )
        await application.start()

        def received() -> list[dict[str, Any]]:
            return list(state()["alerts"])

        try:
            transport = httpx.ASGITransport(app=application.asgi)
            async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
                await scenario(client, application, received)
        finally:
            await application.stop()
            await runner.cleanup()

    asyncio.run(main())


async def _call(client: httpx.AsyncClient) -> int:
    answer = await client.post(
        "/v1/chat/completions",
        headers={"Authorization": "Bearer dave_key"},
        json={"model": "simulator-model", "messages": [{"role": "user", "content": "Hello"}]},
    )
    return answer.status_code


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAAS_ALERTS_TEST_SECRET", SECRET)


def test_alerts_fire_once_each_and_arrive_signed_without_a_database() -> None:
    """Twelve tokens a call against 100 a day: the 5th call reaches 50 %, the 7th 80 %, the 8th 90 % and
    the 9th 100 %; each arrives once (the receiver checks signatures), with the usage that reached it."""

    async def scenario(client: httpx.AsyncClient, app: Application, received: Any) -> None:
        statuses = [await _call(client) for _ in range(10)]
        assert statuses == [200] * 9 + [429]
        await wait_until_async(
            lambda: len(received()) == 4, "four alerts received", seconds=20, interval=0.05
        )
        alerts = sorted(received(), key=lambda alert: alert["threshold_percent"])
        assert [(a["threshold_percent"], a["used"]) for a in alerts] == [
            (50, 60),
            (80, 84),
            (90, 96),
            (100, 108),
        ]
        assert {a["user"] for a in alerts} == {"dave"}
        metrics = app.services.metrics
        assert metrics is not None
        text = metrics.render().decode()
        assert 'maas_alerts_fired_total{threshold="80",webhook="ops"} 1.0' in text

    _run({"limits": [{"limit": 100, "unit": "tokens", "window": "1d"}]}, scenario)


def test_a_reservation_alone_never_fires_an_alert() -> None:
    """In reserve mode a call reserves its worst case (over half of a 200-token budget here), but only
    the 12 tokens it was charged count: no alert is queued."""

    async def scenario(client: httpx.AsyncClient, app: Application, received: Any) -> None:
        assert await _call(client) == 200
        assert await _call(client) == 200
        alerts = app.services.alerts
        assert alerts is not None
        assert alerts.notifier.queued == 0
        assert await alerts.outbox.claim(now=2e9, lease=1.0, limit=10) == []

    tier = {
        "limits": [{"limit": 200, "unit": "tokens", "window": "1d"}],
        "reserve": True,
        "reserve_default_max_tokens": 100,
    }
    _run(tier, scenario)
