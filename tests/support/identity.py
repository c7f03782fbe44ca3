"""Helpers for identity tests over HTTP: a gateway on a shared database, admin and self-service calls."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import httpx

from tests.support.configs import demo_dict
from tests.support.processes import ServerProcess

__all__ = [
    "ADMIN_HEADERS",
    "ADMIN_KEY",
    "admin_call",
    "assert_error",
    "bearer",
    "create_key",
    "identity_config",
]

ADMIN_KEY = "identity-test-admin-key-0123456789abcdef"
ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN_KEY}"}


def identity_config(backend: str, database_url: str, spool: Path, **keys: Any) -> dict[str, Any]:
    """The demo configuration on ``database_url``, with an `unlimited` tier so loops never hit a 429."""
    config = demo_dict(backend)
    config["database"] = {"url": database_url, "spool_dir": str(spool), "flush_interval": "0.2s"}
    config["admin"] = {"key_sha256": hashlib.sha256(ADMIN_KEY.encode()).hexdigest()}
    config["tiers"]["unlimited"] = {"description": "no limits, for loops in tests", "limits": []}
    config["keys"] = keys
    # Every test client shares 127.0.0.1, and these tests fail authentication on purpose, in loops.
    config["security"] = {"auth_failures": {"burst": 1_000_000}}
    return config


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def admin_call(gateway: ServerProcess, method: str, path: str, **kw: Any) -> httpx.Response:
    return httpx.request(method, gateway.url + path, headers=ADMIN_HEADERS, timeout=30, **kw)


def create_key(gateway: ServerProcess, user: str, tier: str = "unlimited", **body: Any) -> dict[str, Any]:
    """A new key of ``user`` (created on ``tier`` if new), through the admin API."""
    answer = admin_call(
        gateway, "POST", "/admin/keys", json={"user": user, "tier": tier, "name": "test", **body}
    )
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def assert_error(response: httpx.Response, status: int, code: str) -> str:
    """Check an OpenAI-shaped error (status, code, a whole-sentence message); return the message."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    assert error["message"].endswith("."), "error messages are whole sentences"
    return str(error["message"])
