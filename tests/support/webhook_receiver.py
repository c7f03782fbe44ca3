"""A webhook receiver for budget alerts, as a real process: it checks every signature the way
docs/alerts.md tells receivers to, and remembers what it accepted.

- ``POST /hook``: 401 for a missing, wrong or stale signature (counted), 204 for a genuine alert
  (recorded; a repeat of an id already accepted is counted as a duplicate and not recorded twice).
- ``POST /status/{code}``: answer genuine alerts with ``code`` from now on (503 to play a failing webhook;
  0 to hold them unanswered for an hour, counted in ``held``, as a webhook that hangs mid-delivery).
- ``GET /received``: ``{"alerts": [...], "bad_signatures": n, "duplicates": n, "held": n}``.
- ``GET /health``: 200.

Run as ``python webhook_receiver.py PORT SECRET``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import sys
import time
from typing import Any

from aiohttp import web

_alerts: list[dict[str, Any]] = []
_seen: set[str] = set()
_counts = {"bad_signatures": 0, "duplicates": 0, "held": 0}
_status = {"code": 204}


def state() -> dict[str, Any]:
    """What ``GET /received`` answers (for a receiver run inside the test's own process)."""
    return {"alerts": list(_alerts), **_counts}


def reset() -> None:
    """Forget everything, for the next test in the same process."""
    _alerts.clear()
    _seen.clear()
    _counts.update(bad_signatures=0, duplicates=0, held=0)
    _status["code"] = 204


def verify(secret: bytes, body: bytes, timestamp: str | None, signature: str | None) -> bool:
    """docs/alerts.md's check: HMAC-SHA256 of ``<timestamp>.<body>``, compared in constant time, and a
    timestamp within five minutes of the receiver's clock."""
    if not timestamp or not signature or not timestamp.isdigit():
        return False
    if abs(time.time() - int(timestamp)) > 300:
        return False
    expected = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(f"sha256={expected}", signature)


def build(secret: bytes) -> web.Application:
    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        if not verify(
            secret, body, request.headers.get("x-maas-timestamp"), request.headers.get("x-maas-signature")
        ):
            _counts["bad_signatures"] += 1
            return web.Response(status=401, text="bad signature")
        if _status["code"] == 0:
            _counts["held"] += 1
            await asyncio.sleep(3600)
        if _status["code"] >= 300:
            return web.Response(status=_status["code"])
        alert = json.loads(body)
        if alert["id"] in _seen:
            _counts["duplicates"] += 1
        else:
            _seen.add(alert["id"])
            _alerts.append(alert)
        return web.Response(status=_status["code"])

    async def set_status(request: web.Request) -> web.Response:
        _status["code"] = int(request.match_info["code"])
        return web.Response(status=204)

    async def received(request: web.Request) -> web.Response:
        return web.json_response(state())

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.add_routes(
        [
            web.post("/hook", hook),
            web.post("/status/{code}", set_status),
            web.get("/received", received),
            web.get("/health", health),
        ]
    )
    return app


if __name__ == "__main__":
    # Held deliveries must not hold up the end of a test: stop without waiting for them.
    web.run_app(
        build(sys.argv[2].encode()), host="127.0.0.1", port=int(sys.argv[1]), print=None, shutdown_timeout=0.5
    )
