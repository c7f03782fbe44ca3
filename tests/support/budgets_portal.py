"""Helpers for the Teams & budgets pages' tests: a gateway with two teams' budgets, a tier-wide one, a
calendar time zone, a currency other than dollars, and alerts to a webhook that never answers; and reading
a budget's row off a page."""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai

from tests.support.developer_portal import developer_config
from tests.support.portal import ADMIN_KEY

__all__ = [
    "ALERT_SECRET_ENV",
    "ALPHA_KEY",
    "BETA_KEY",
    "Answer",
    "BudgetRow",
    "admin_api",
    "budget_row",
    "budgets_config",
    "call",
    "owners_on",
]

ALPHA_KEY = "alpha_team_key_0123456789"  # dev1's key for the team alpha
BETA_KEY = "beta_team_key_0123456789"  # dev2's key for the team beta
ALERT_SECRET_ENV = "MAAS_BUDGET_ALERT_SECRET"
TIMEZONE = "Europe/Berlin"


def _closed_port() -> int:
    """A loopback port nothing listens on: the webhook's deliveries fail, so alerts stay in the outbox."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def budgets_config(backend: str, directory: Path) -> dict[str, Any]:
    """The developer configuration in CHF with calendar windows in Europe/Berlin; team alpha: 4 requests a
    month, team beta: 0.50 CHF a week, team gamma: 10 requests a day; the free tier together: 50
    requests a day; alerts at 50/80/90/100 % to a webhook that refuses connections (one attempt)."""
    config = developer_config(backend, directory)
    config["pricing"] = {"currency": "CHF"}
    config["limits"]["timezone"] = TIMEZONE
    config["tiers"]["free"]["limits"].append(
        {"limit": 50, "unit": "requests", "window": "day", "scope": "tier"}
    )
    config["teams"] = {
        "alpha": {"limits": [{"limit": 4, "unit": "requests", "window": "month"}]},
        "beta": {"limits": [{"limit": 0.5, "unit": "cost", "window": "week"}]},
        "gamma": {"limits": [{"limit": 10, "unit": "requests", "window": "day"}]},
    }
    config["api_keys"] += [
        {"user": "dev1", "tier": "free", "key": ALPHA_KEY, "team": "alpha"},
        {"user": "dev2", "tier": "free", "key": BETA_KEY, "team": "beta"},
    ]
    hook = f"http://127.0.0.1:{_closed_port()}/hook"
    config["alerts"] = {
        "enabled": True,
        "webhooks": [{"name": "ops", "url": hook, "secret_env": ALERT_SECRET_ENV}],
        "max_attempts": 1,
        "poll_interval": 0.2,
    }
    return config


def admin_api(base_url: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    return httpx.request(method, base_url + path, headers=headers, timeout=30, **kwargs)


@dataclass(frozen=True, slots=True)
class Answer:
    status_code: int
    headers: dict[str, str]


def call(base_url: str, key: str) -> Answer:
    """One chat call through the OpenAI SDK, answered or refused (429): its status and headers."""
    client = openai.OpenAI(base_url=f"{base_url}/v1", api_key=key, max_retries=0)
    try:
        raw = client.chat.completions.with_raw_response.create(
            model="simulator-model", messages=[{"role": "user", "content": "Hello"}], max_tokens=5
        )
        return Answer(raw.http_response.status_code, dict(raw.http_response.headers))
    except openai.RateLimitError as exc:
        return Answer(exc.response.status_code, dict(exc.response.headers))
    finally:
        client.close()


@dataclass(frozen=True, slots=True)
class BudgetRow:
    used: str
    remaining: str
    resets: str
    fired: list[int]

    @property
    def used_count(self) -> int:
        return int(self.used.split()[0].replace(",", ""))

    @property
    def remaining_count(self) -> int:
        return int(self.remaining.split()[0].replace(",", ""))


def budget_row(html: str, owner: str, limit_key: str) -> BudgetRow | None:
    """The row of the budget of ``owner`` ("team:alpha", "tier:free", "dev1") and ``limit_key``
    ("requests/month (Europe/Berlin)/*"), as the page shows it; None if the page has none."""
    pattern = (
        rf'<tr data-testid="budget" data-owner="{re.escape(owner)}" '
        rf'data-limit="{re.escape(limit_key)}">(.*?)</tr>'
    )
    match = re.search(pattern, html, re.DOTALL)
    if match is None:
        return None
    row = match.group(1)

    def cell(name: str) -> str:
        found = re.search(rf'data-testid="{name}">(.*?)</td>', row, re.DOTALL)
        assert found is not None, f"the budget row has no {name}"
        return found.group(1).strip()

    fired = [int(value) for value in re.findall(r'<span class="badge[^"]*">(\d+) %</span>', cell("fired"))]
    return BudgetRow(cell("used"), cell("remaining"), cell("resets"), fired)


def owners_on(html: str) -> set[str]:
    """Whose budgets the page lists."""
    return set(re.findall(r'data-testid="budget" data-owner="([^"]*)"', html))
