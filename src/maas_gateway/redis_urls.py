"""Which Redis URLs the gateway accepts: checked when the configuration loads and when connecting.

A module of its own so that the configuration can check a URL without importing the limiter.
"""

from __future__ import annotations

import ssl
from typing import Any

from redis.asyncio.connection import SSLConnection, parse_url

__all__ = ["CERT_REQUIREMENTS", "url_problem"]

_TLS_OPTIONS = {"ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs", "ssl_check_hostname"}
_PLAIN_OPTIONS = {"host", "port", "db", "username", "password", "path", "connection_class"}

CERT_REQUIREMENTS = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}


def url_problem(url: str) -> str | None:
    """What is wrong with a Redis URL's options for this connection, or ``None`` (checked at load)."""
    options: dict[str, Any] = dict(parse_url(url))
    tls = options.get("connection_class") is SSLConnection
    unknown = sorted(set(options) - _PLAIN_OPTIONS - (_TLS_OPTIONS if tls else set()))
    if unknown:
        return f"has options the limiter does not support: {', '.join(unknown)}"
    requirement = str(options.get("ssl_cert_reqs", "required")).lower()
    if requirement not in CERT_REQUIREMENTS:
        return f"ssl_cert_reqs must be none, optional or required, not {requirement!r}"
    if requirement == "none" and options.get("ssl_check_hostname"):
        return "ssl_check_hostname cannot be true when ssl_cert_reqs is none"
    return None
