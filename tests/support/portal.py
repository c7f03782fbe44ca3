"""Portal tests' helpers: a gateway with a SQLite database and portal accounts, and signing in over HTTP.

Every test signs in from its own client address (``X-Forwarded-For`` from loopback, a trusted proxy in
these configurations), so the per-address sign-in throttle of one test never blocks another.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from tests.support.configs import demo_dict
from tests.support.gateways import start_gateway
from tests.support.processes import GatewayProcess, maas

__all__ = [
    "ADMIN_KEY",
    "DEV_KEY",
    "create_account",
    "csrf_token",
    "next_address",
    "portal_config",
    "remaining",
    "sign_in",
    "start_portal_gateway",
]

ADMIN_KEY = "portal-test-admin-key-0123456789abcdefgh"
DEV_KEY = "dev1_portal_key"
_addresses = itertools.count(1)


def next_address() -> str:
    """A client address of its own (198.51.100.0/24 is reserved for documentation)."""
    number = next(_addresses)
    return f"198.51.{100 + number // 250}.{number % 250 + 1}"


def portal_config(backend: str, directory: Path, **portal: Any) -> dict[str, Any]:
    """The demo configuration with a SQLite database, loopback as a trusted proxy, a key for dev1, and
    ``portal`` settings on top of the defaults."""
    data = demo_dict(backend)
    data["database"] = {
        "url": f"sqlite+aiosqlite:///{directory / 'portal.db'}",
        "spool_dir": str(directory / "spool"),
        "flush_interval": 0.2,
    }
    data["server"]["trusted_proxies"] = ["127.0.0.1/32"]
    data["api_keys"].append({"user": "dev1", "tier": "free", "key": DEV_KEY})
    data["portal"] = portal
    return data


def create_account(
    config: dict[str, Any], user: str, password: str, *, admin: bool = False, tier: str = "free"
) -> None:
    """``maas users create USER --password-stdin`` against the configuration's database."""
    command = maas(
        "users",
        "create",
        user,
        "--password-stdin",
        "--tier",
        tier,
        "--database-url",
        config["database"]["url"],
    )
    if admin:
        command.append("--admin")
    subprocess.run(command, input=password + "\n", text=True, check=True, capture_output=True, timeout=60)


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match is not None, "the page has no CSRF field"
    return match.group(1)


@contextlib.contextmanager
def sign_in(base_url: str, user: str, password: str, address: str | None = None) -> Iterator[httpx.Client]:
    """A client signed in as ``user`` (its cookies hold the session), from ``address``."""
    headers = {"X-Forwarded-For": address or next_address()}
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:
        form = client.get("/portal/sign-in")
        data = {"user": user, "password": password, "next": "/portal/", "csrf_token": csrf_token(form.text)}
        answer = client.post("/portal/sign-in", data=data)
        assert answer.status_code == 303, answer.text
        yield client


def remaining(html: str, description: str) -> int:
    """What the overview shows left in the window described as ``description`` ("5 requests per 2m")."""
    pattern = re.escape(description) + r"</label>.*?(\d+) of (\d+) left"
    match = re.search(pattern, html, re.DOTALL)
    assert match is not None, f"no window '{description}' on the page"
    return int(match.group(1))


def start_portal_gateway(backend: str, directory: Path, **portal: Any) -> GatewayProcess:
    """A gateway (``portal_config``) with the demo accounts dev1 / openshift and admin / admin-password,
    and ``ADMIN_KEY`` as its admin API key."""
    config = portal_config(backend, directory, **portal)
    create_account(config, "dev1", "openshift")
    create_account(config, "admin", "admin-password", admin=True)
    return start_gateway(config, directory, env={"MAAS_ADMIN_KEY": ADMIN_KEY})
