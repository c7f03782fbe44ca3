"""Reloads swap one immutable snapshot: requests in flight keep theirs, a bad file changes nothing.

In-process over ``InMemoryTransport`` (no sockets): the application root is built as `maas serve` builds
it, and ``Application.apply`` is what SIGHUP calls after reading the file.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import httpx
import pytest
import yaml

from maas_gateway.application import Application
from maas_gateway.config import ConfigError, demo_config_text, parse_config
from maas_gateway.limits import InMemoryLimitStorage
from maas_gateway.upstream import InMemoryTransport, MemoryAnswer, UpstreamRequest
from tests.support.memory_backend import memory_chat_answer

USAGE = {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}
CHAT = {"model": "simulator-model", "messages": [{"role": "user", "content": "Hello"}]}


def _config(**model_fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = copy.deepcopy(yaml.safe_load(demo_config_text()))
    data["server"]["access_log"] = False
    for model in data["models"]:
        if model["name"] == "simulator-model":
            model.update(model_fields)
    return data


def _client(application: Application) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=application.asgi), base_url="http://gw")


def test_a_request_in_flight_finishes_under_the_configuration_it_started_with() -> None:
    """A reload during a request: that request is charged with the old multiplier, the next with the
    new one, and the next goes to the new backend."""
    arrived, release = asyncio.Event(), asyncio.Event()

    async def handler(request: UpstreamRequest) -> MemoryAnswer:
        if len(transport.requests) == 1:
            arrived.set()
            await release.wait()
        return memory_chat_answer()

    transport = InMemoryTransport(handler)
    application = Application(parse_config(_config()), transport=transport)
    key = {"Authorization": "Bearer enterpriseuser1_key"}

    async def scenario() -> None:
        async with _client(application) as client:
            first = asyncio.create_task(client.post("/v1/chat/completions", json=CHAT, headers=key))
            await arrived.wait()
            reloaded = _config(token_multiplier=2, backends=["http://new-backend:9000"])
            assert application.apply(parse_config(reloaded)) == []
            release.set()
            old = await first
            new = await client.post("/v1/chat/completions", json=CHAT, headers=key)
        assert old.status_code == new.status_code == 200
        assert old.headers["x-ratelimit-consumed-tokens"] == "12"
        assert new.headers["x-ratelimit-consumed-tokens"] == "24"
        assert transport.requests[-1].url.startswith("http://new-backend:9000/")
        assert not transport.requests[0].url.startswith("http://new-backend:9000/")

    asyncio.run(scenario())


def test_a_configuration_that_cannot_be_applied_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """A file refused while building the snapshot (a too short admin key) leaves the old one in force:
    the key it adds is unknown, the model it drops still answers."""
    transport = InMemoryTransport(lambda request: _ok())
    application = Application(parse_config(_config()), transport=transport)
    before = application.current()
    changed = _config()
    changed["api_keys"].append({"user": "newcomer", "tier": "free", "key": "newcomer_key_1"})
    changed["models"] = [m for m in changed["models"] if m["name"] != "simulator-model"]
    monkeypatch.setenv("MAAS_ADMIN_KEY", "short")
    with pytest.raises(ConfigError, match="admin key must have at least"):
        application.apply(parse_config(changed))
    assert application.current() is before

    async def scenario() -> None:
        async with _client(application) as client:
            newcomer = {"Authorization": "Bearer newcomer_key_1"}
            refused = await client.post("/v1/chat/completions", json=CHAT, headers=newcomer)
            assert refused.status_code == 401
            known = {"Authorization": "Bearer freeuser1_key"}
            served = await client.post("/v1/chat/completions", json=CHAT, headers=known)
            assert served.status_code == 200

    asyncio.run(scenario())


async def _ok() -> MemoryAnswer:
    return memory_chat_answer()


def test_a_reload_names_the_settings_that_need_a_restart_and_applies_the_live_ones() -> None:
    """Limit storage and the server's port wait for a restart (and are named by every reload until
    then); the body limit is live."""
    application = Application(parse_config(_config()), transport=InMemoryTransport(lambda r: _ok()))
    changed = _config()
    changed["limits"] = {**changed.get("limits", {}), "storage": "redis://127.0.0.1:6399/0"}
    changed["server"]["port"] = changed["server"].get("port", 8000) + 1
    changed["server"]["max_body_bytes"] = 1024
    assert application.apply(parse_config(changed)) == ["server", "limits"]
    assert application.current().max_body_bytes == 1024
    assert isinstance(application.services.limit_storage, InMemoryLimitStorage)
    # Until the restart, every reload says so, not only the first one that saw the change.
    changed["server"]["max_body_bytes"] = 2048
    assert application.apply(parse_config(changed)) == ["server", "limits"]
    assert application.current().max_body_bytes == 2048
