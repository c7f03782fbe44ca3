"""Signing a webhook's body, and checking a signature the way a receiver should.

The signed material is ``<timestamp>.<raw body>``: a receiver that checks the signature and refuses a
timestamp too far from its own clock cannot be fed a recorded request again later (replay). The
signature travels as ``x-maas-signature: sha256=<hex>``, the timestamp (Unix seconds) as
``x-maas-timestamp``. docs/alerts.md shows a receiver's check.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = [
    "ALERT_ID_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "signature",
    "signed_headers",
    "verify_signature",
]

SIGNATURE_HEADER = "x-maas-signature"
TIMESTAMP_HEADER = "x-maas-timestamp"
ALERT_ID_HEADER = "x-maas-alert-id"


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    """``sha256=`` and the hex HMAC-SHA256 of ``<timestamp>.<body>`` under ``secret``."""
    digest = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def signed_headers(secret: bytes, body: bytes, now: float, alert_id: str) -> dict[str, str]:
    timestamp = int(now)
    return {
        "content-type": "application/json",
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, body),
        ALERT_ID_HEADER: alert_id,
    }


def verify_signature(
    secret: bytes,
    body: bytes,
    timestamp: str | None,
    received: str | None,
    now: float,
    tolerance: float = 300.0,
) -> bool:
    """Whether ``received`` signs ``body`` at ``timestamp`` under ``secret``, and the timestamp is
    within ``tolerance`` seconds of ``now``. Compared in constant time."""
    if timestamp is None or received is None or not timestamp.isdigit():
        return False
    if abs(now - int(timestamp)) > tolerance:
        return False
    return hmac.compare_digest(signature(secret, int(timestamp), body), received)
