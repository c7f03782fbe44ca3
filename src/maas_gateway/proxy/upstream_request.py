"""Shaping what goes to the backend: the body it expects and headers it may trust."""

from __future__ import annotations

from functools import lru_cache
from typing import Any
from urllib.parse import quote

import orjson

from maas_gateway.auth.identity import Identity
from maas_gateway.errors import InvalidRequestError
from maas_gateway.http.asgi import Scope
from maas_gateway.http.forwarded import TrustedProxies, forwarding_headers
from maas_gateway.proxy.header_names import HeaderRole, header_role

__all__ = ["identity_value", "upstream_body", "upstream_headers"]

KEEP, FORWARDING, HOST = HeaderRole.KEEP, HeaderRole.FORWARDING, HeaderRole.HOST
# quote() never encodes letters, digits and "_.-~"; these are added. "%" and "+" are not among them, so
# the encoding is injective and form decoders (+ as space) cannot merge two values either.
_IDENTITY_SAFE = ":@/"


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
    if not changed:
        return raw
    try:
        return orjson.dumps(data)
    except TypeError:  # orjson encodes at most 254 levels of nesting, though it decodes up to 1024
        raise InvalidRequestError(
            "The request body nests arrays or objects more than 254 levels deep, so the gateway cannot "
            "forward it with the changes it must make; flatten it.",
            code="invalid_json",
        ) from None


def upstream_headers(
    scope: Scope,
    identity: Identity,
    model: str,
    request_id: str,
    trusted: TrustedProxies,
    content_type: str = "application/json",
) -> list[tuple[str, str]]:
    """Client headers minus credentials, framing and forged identity (by canonical name), plus forwarding
    headers set from the connection and the identity the gateway vouches for."""
    headers: list[tuple[str, str]] = []
    forwarding: list[tuple[str, str]] = []
    host = None
    for raw_name, raw_value in scope["headers"]:
        role, name = header_role(raw_name)
        if role is KEEP:
            headers.append((name, raw_value.decode("latin-1")))
        elif role is FORWARDING:
            forwarding.append((name, raw_value.decode("latin-1")))
        elif role is HOST:
            host = raw_value.decode("latin-1")
    headers += forwarding_headers(scope, trusted, forwarding, host)
    headers += [
        ("content-type", content_type),
        ("x-request-id", request_id),
        ("x-maas-user", identity_value(identity.user)),
        ("x-maas-tier", identity_value(identity.tier)),
        ("x-maas-key-id", identity.key_id),
        ("x-maas-model", identity_value(model)),
    ]
    return headers


@lru_cache(maxsize=4096)
def identity_value(value: str) -> str:
    """``value`` percent-encoded (its UTF-8 bytes) except for ``A-Z a-z 0-9 - . _ ~ : @ /``.

    ``%`` itself is encoded, so no two values share an encoding: ``ü`` is ``%C3%BC`` and the name
    ``%C3%BC`` is ``%25C3%25BC``. Backends decode with any standard percent-decoder (docs/identity.md).
    """
    return quote(value, safe=_IDENTITY_SAFE)
