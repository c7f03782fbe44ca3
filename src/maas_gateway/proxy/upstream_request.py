"""Shaping what goes to the backend: the body it expects and headers it may trust."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import orjson

from maas_gateway.auth.identity import Identity
from maas_gateway.proxy.asgi import HOP_BY_HOP, Scope, is_identity_header

__all__ = ["upstream_body", "upstream_headers"]

_NEVER_FORWARDED = HOP_BY_HOP | {"authorization", "cookie", "x-request-id", "content-type"}


def upstream_body(
    raw: bytes, data: dict[str, Any], served_name: str, stream: bool, *, changed: bool = False
) -> bytes:
    """The body for the backend: the served model name, and usage requested on streams.

    The client's bytes are forwarded untouched when nothing needs to change; ``changed`` says the
    caller already edited ``data``.
    """
    if data.get("model") != served_name:
        data["model"] = served_name
        changed = True
    if stream:
        options = data.get("stream_options")
        if not isinstance(options, dict) or options.get("include_usage") is not True:
            data["stream_options"] = {**(options or {}), "include_usage": True}
            changed = True
    return orjson.dumps(data) if changed else raw


def upstream_headers(scope: Scope, identity: Identity, model: str, request_id: str) -> list[tuple[str, str]]:
    """Client headers minus credentials and forged identity, plus the identity the gateway vouches for."""
    headers: list[tuple[str, str]] = []
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1").lower()
        if name in _NEVER_FORWARDED or is_identity_header(name):
            continue
        headers.append((name, raw_value.decode("latin-1")))
    headers += [
        ("content-type", "application/json"),
        ("x-request-id", request_id),
        ("x-maas-user", _header_safe(identity.user)),
        ("x-maas-tier", _header_safe(identity.tier)),
        ("x-maas-key-id", identity.key_id),
        ("x-maas-model", _header_safe(model)),
    ]
    return headers


def _header_safe(value: str) -> str:
    return value if value.isascii() and value.isprintable() else quote(value, safe="")
