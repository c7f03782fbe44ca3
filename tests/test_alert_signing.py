"""Signing alerts, and the receiver's check that docs/alerts.md shows: the example itself is run here
against genuine, tampered, re-signed and stale deliveries, so the documentation cannot drift."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import orjson

from maas_gateway.alerts.payload import alert_payload, sample_event
from maas_gateway.alerts.signing import signature, signed_headers, verify_signature

SECRET = b"the-shared-signing-secret"
DOC = Path(__file__).parent.parent / "docs" / "alerts.md"

Verify = Callable[..., bool]


def _documented_verify() -> Verify:
    """The `verify_alert` function of docs/alerts.md's "Verifying a delivery" section, as written."""
    section = DOC.read_text("utf-8").split("## Verifying a delivery", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None, "docs/alerts.md lost its verification example"
    namespace: dict[str, object] = {}
    exec(compile(code.group(1), str(DOC), "exec"), namespace)  # noqa: S102  # our own documentation's code
    verify = namespace["verify_alert"]
    assert callable(verify)
    return verify


def _delivery(now: float = 1_800_000_000.0) -> tuple[bytes, dict[str, str]]:
    event = sample_event("ops", now)
    body = alert_payload(event)
    return body, signed_headers(SECRET, body, now, event.alert_id)


def test_the_documented_check_accepts_a_genuine_delivery() -> None:
    """A body as sent, with its headers, passes the documentation's check and the gateway's own."""
    verify = _documented_verify()
    body, headers = _delivery()
    timestamp, signed = headers["x-maas-timestamp"], headers["x-maas-signature"]
    assert verify(SECRET, body, timestamp, signed, now=1_800_000_010.0)
    assert verify_signature(SECRET, body, timestamp, signed, now=1_800_000_010.0)
    assert signed == signature(SECRET, int(timestamp), body)
    assert signed.startswith("sha256=")
    assert len(signed) == len("sha256=") + 64


def test_the_documented_check_detects_every_mismatch() -> None:
    """A changed body (even re-serialised JSON with the same meaning), another secret, a timestamp moved
    (the signature covers it), a replay after five minutes, a missing or malformed header: all refused."""
    verify = _documented_verify()
    body, headers = _delivery()
    timestamp, signed = headers["x-maas-timestamp"], headers["x-maas-signature"]
    now = 1_800_000_010.0
    tampered = body.replace(b'"used":800', b'"used":100')
    assert tampered != body
    reformatted = orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2)
    cases = [
        (SECRET, tampered, timestamp, signed, now),
        (SECRET, reformatted, timestamp, signed, now),
        (b"another-secret", body, timestamp, signed, now),
        (SECRET, body, str(int(timestamp) + 1), signed, now),
        (SECRET, body, timestamp, signed, now + 301),
        (SECRET, body, timestamp, signed, now - 400),
        (SECRET, body, None, signed, now),
        (SECRET, body, timestamp, None, now),
        (SECRET, body, "-1", signed, now),
        (SECRET, body, timestamp, signed.upper(), now),
    ]
    for secret, what, stamp, given, at in cases:
        assert not verify(secret, what, stamp, given, now=at)
        assert not verify_signature(secret, what, stamp, given, at)


def test_the_body_is_the_documented_schema() -> None:
    """The payload's fields are those docs/alerts.md lists, with times in UTC ISO 8601."""
    body = orjson.loads(_delivery()[0])
    assert set(body) == {
        "type",
        "id",
        "test",
        "created_at",
        "user",
        "tier",
        "limit",
        "window",
        "threshold_percent",
        "used",
        "used_percent",
    }
    assert body["type"] == "maas.budget.threshold_reached"
    assert body["window"] == {"start": "2027-01-15T08:00:00Z", "end": "2027-01-15T09:00:00Z"}
    assert body["created_at"] == "2027-01-15T08:00:00Z"
    assert (body["threshold_percent"], body["used"], body["used_percent"]) == (80, 800, 80.0)
    documented = DOC.read_text("utf-8")
    for field in body:
        assert f'"{field}"' in documented
