"""Which client headers may reach a backend, judged by the name a backend may read them under.

Many backends and frameworks read a header name loosely: CGI and WSGI turn ``-`` into ``_``, nginx and
others accept ``_``, so ``x_maas_user`` (or ``x.maas.user``) can arrive where ``x-maas-user`` is read.
Names are therefore judged by their canonical form, every character other than a letter or digit
written as ``-``: a header whose canonical name is one the gateway controls (identity, credentials,
framing, forwarding) is dropped unless it has that exact name, and only forwarding headers are kept
even then (from a trusted proxy; proxy/forwarded.py).

The judgement is cached per raw name (names repeat from request to request); the cache is bounded
because names are the client's choice.
"""

from __future__ import annotations

import re
from enum import Enum
from functools import lru_cache

from maas_gateway.http.asgi import HOP_BY_HOP

__all__ = ["HeaderRole", "canonical_name", "header_role", "is_identity_header"]

IDENTITY_PREFIX = "x-maas-"
# Headers some backends trust as the caller's identity: only the gateway may set them.
_IDENTITY = frozenset(
    {
        "x-forwarded-user",
        "x-forwarded-email",
        "x-forwarded-groups",
        "x-forwarded-preferred-username",
        "x-forwarded-access-token",
        "x-auth-request-user",
        "x-auth-request-email",
        "x-auth-request-groups",
        "x-auth-request-preferred-username",
        "x-auth-request-access-token",
        "x-remote-user",
        "x-remote-group",
        "x-user",
        "x-user-id",
        "x-tier",
    }
)
# Credentials in every header a client may send one in (x-api-key: Anthropic's clients; api-key: Azure
# OpenAI's): the backend is not the caller's to authenticate against, and a key must not leak to it.
_NEVER_FORWARDED = HOP_BY_HOP | {
    "authorization",
    "x-api-key",
    "api-key",
    "cookie",
    "x-request-id",
    "content-type",
}
_FORWARDING = frozenset({"x-real-ip", "forwarded"})
_NOT_ALPHANUMERIC = re.compile(r"[^a-z0-9]")


class HeaderRole(Enum):
    KEEP = "keep"  # passed to the backend as it came
    DROP = "drop"  # never passed
    FORWARDING = "forwarding"  # x-forwarded-*, x-real-ip, forwarded: passed from trusted proxies only
    HOST = "host"  # not passed, but its value becomes X-Forwarded-Host


def canonical_name(name: str) -> str:
    """``name`` in lower case with every character other than a letter or digit as ``-``."""
    return _NOT_ALPHANUMERIC.sub("-", name.lower())


def is_identity_header(name: str) -> bool:
    canonical = canonical_name(name)
    return canonical.startswith(IDENTITY_PREFIX) or canonical in _IDENTITY


@lru_cache(maxsize=1024)
def header_role(raw: bytes) -> tuple[HeaderRole, str]:
    """The role of a client header named ``raw`` (lower case, as uvicorn gives it), and its name."""
    name = raw.decode("latin-1").lower()
    if name == "host":
        return HeaderRole.HOST, name
    canonical = canonical_name(name)
    if canonical in _NEVER_FORWARDED or is_identity_header(canonical):
        return HeaderRole.DROP, name
    if canonical in _FORWARDING or canonical.startswith("x-forwarded-"):
        return (HeaderRole.FORWARDING if canonical == name else HeaderRole.DROP), name
    return HeaderRole.KEEP, name
