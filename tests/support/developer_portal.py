"""Helpers for the portal's developer pages' tests (Keys, Models, Playground): a roomy configuration, and
reading what the Keys page shows."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import openai

from tests.support.portal import csrf_token, portal_config

__all__ = ["DAY", "MARKUP", "calls", "create_key", "developer_config", "key_id_on", "secret_on"]

MARKUP = '<script>alert("x")</script><b>bold</b>'
DAY = 86400.0


def developer_config(backend: str, directory: Path) -> dict[str, Any]:
    """The portal configuration with roomy free limits (these tests make many calls), a priced model, and
    a model only the premium tier may use."""
    config = portal_config(backend, directory)
    config["tiers"]["free"]["limits"] = [
        {"limit": 1000, "unit": "requests", "window": "2m"},
        {"limit": 100000, "unit": "tokens", "window": "1h"},
    ]
    config["models"][0]["pricing"] = {"prompt_per_1k": 0.5, "completion_per_1k": 1.5}
    config["models"].append(
        {
            "name": "premium-model",
            "backends": [backend],
            "served_name": "simulator-model",
            "tiers": ["premium"],
        }
    )
    return config


def secret_on(html: str) -> str:
    match = re.search(r'data-testid="secret">([^<]+)</code>', html)
    assert match is not None, "the page shows no secret"
    return match.group(1)


def key_id_on(html: str) -> str:
    match = re.search(r"<dt>Id</dt><dd><code>(key_[a-z0-9]+)</code>", html)
    assert match is not None, "the page shows no key id"
    return match.group(1)


def create_key(
    client: httpx.Client, name: str, models: tuple[str, ...] = ("simulator-model",), lifetime: float = DAY
) -> httpx.Response:
    """Submit the Keys page's form as a signed-in ``client``."""
    token = csrf_token(client.get("/portal/keys").text)
    data: dict[str, Any] = {
        "name": name,
        "models": list(models),
        "lifetime": str(lifetime),
        "csrf_token": token,
    }
    return client.post("/portal/keys", data=data)


def calls(base_url: str, secret: str, model: str = "simulator-model") -> bool:
    """Whether ``secret`` gets an answer from the chat API (False on 401), through the OpenAI SDK."""
    client = openai.OpenAI(base_url=f"{base_url}/v1", api_key=secret, max_retries=0)
    try:
        answer = client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "Hello"}], max_tokens=5
        )
    except openai.AuthenticationError:
        return False
    finally:
        client.close()
    assert answer.choices[0].message.content
    return True
