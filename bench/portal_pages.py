"""The usage pages' server-side render time, in process: the whole gateway (``Application``) over the
benchmark's database, its portal reached through httpx's ASGI transport, signed in through the real
sign-in form. The time of one GET is the gateway's routing, session check, the page's queries and the
template (and a negligible in-memory transport; no network, no browser)."""

from __future__ import annotations

import hashlib
import re
import sys
import time
from collections.abc import Callable

import httpx
import yaml

from ledger_load import median_p95
from maas_gateway.application.root import Application
from maas_gateway.config.loader import demo_config_text, parse_config
from maas_gateway.config.schema import GatewayConfig

__all__ = ["PAGES", "bench_config", "measure_pages"]

PASSWORD = "bench-password"
ADMIN = "bench-admin"
MONTH = "&".join(("from={start}", "to={end}"))

# Each page: its address and whether an administrator asks for it (else a developer, a new one each run).
PAGES: dict[str, tuple[str, bool]] = {
    "page: developer usage 24 h": ("/portal/usage?period=24h", False),
    "page: developer usage 7 d": ("/portal/usage?period=7d", False),
    "page: developer usage 30 d": ("/portal/usage?period=30d", False),
    "page: admin overview (24 h)": ("/portal/admin/", True),
    "page: admin usage 30 d by user (first 100)": ("/portal/admin/usage?group=user&" + MONTH, True),
    "page: admin usage 30 d by model": ("/portal/admin/usage?group=model&" + MONTH, True),
    "page: admin usage 30 d by day": ("/portal/admin/usage?group=day&" + MONTH, True),
    "page: admin usage 30 d by user, model, day (first 100)": (
        "/portal/admin/usage?group=user&group=model&group=day&" + MONTH,
        True,
    ),
}


def bench_config(url: str, *, admin_key: str | None = None) -> GatewayConfig:
    """The demo configuration over the benchmark's database, limits off; with ``admin_key``, the admin
    API open to it."""
    data = yaml.safe_load(demo_config_text())
    data["database"] = {"url": url}
    data["limits"]["enabled"] = False  # the usage pages read no limiter; no Redis needed
    if admin_key is not None:
        data["admin"] = {"key_sha256": hashlib.sha256(admin_key.encode()).hexdigest()}
    return parse_config(data)


async def _signed_in(application: Application, user: str, *, admin: bool) -> httpx.AsyncClient:
    """A client of the in-process gateway signed in as ``user`` (created with a portal account)."""
    await application.portal.accounts.create(user, PASSWORD, tier="free", is_admin=admin)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=application.asgi), base_url="http://gw")
    form = (await client.get("/portal/sign-in")).text
    match = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert match is not None, "the sign-in form has no CSRF field"
    data = {"user": user, "password": PASSWORD, "next": "/portal/", "csrf_token": match.group(1)}
    answer = await client.post("/portal/sign-in", data=data)
    assert answer.status_code == 303, answer.text
    return client


async def measure_pages(
    url: str, users: Callable[[int], str], runs: int, start: str, end: str
) -> list[tuple[str, float, float]]:
    """Median and p95 milliseconds of each page in ``PAGES``; developer pages as ``users(run)``."""
    application = Application(bench_config(url))
    await application.start()
    clients: list[httpx.AsyncClient] = []
    try:
        admin = await _signed_in(application, ADMIN, admin=True)
        clients.append(admin)
        developers = []
        for run in range(runs + 1):  # the last one warms up
            developers.append(await _signed_in(application, users(run), admin=False))
        clients += developers
        results = []
        for name, (path, as_admin) in PAGES.items():
            print(f"measuring: {name}", file=sys.stderr, flush=True)
            address = path.format(start=start, end=end)
            times = []
            for run in [runs, *range(runs)]:  # a warm-up first, with a user the runs do not use
                client = admin if as_admin else developers[run]
                started = time.perf_counter()
                answer = await client.get(address)
                elapsed = (time.perf_counter() - started) * 1000
                assert answer.status_code == 200, f"{address}: {answer.status_code} {answer.text[:300]}"
                if run != runs:
                    times.append(elapsed)
            results.append((name, *median_p95(times)))
        return results
    finally:
        for client in clients:
            await client.aclose()
        await application.stop()
