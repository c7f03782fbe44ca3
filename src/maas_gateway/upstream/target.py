"""A backend URL taken apart once: where to connect, what to ask for, and the headers the URL implies.

Every transport uses this, so the real one and the in-memory one send a backend the same ``host`` and
``authorization`` headers.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

__all__ = ["Origin", "Target", "parse_target"]

Origin = tuple[str, str, int]  # scheme, host (IPv6 without brackets, as sockets want it), port


@dataclass(frozen=True, slots=True)
class Target:
    origin: Origin
    path: str  # with the query, as the request line wants it
    host_header: str  # IPv6 in brackets; the port only when it is not the scheme's default
    authorization: str | None  # Basic credentials from the URL's user information, if it has any

    def __repr__(self) -> str:
        # Never show the credentials, wherever a target ends up printed.
        return f"Target(origin={self.origin!r}, path={self.path!r})"


def parse_target(url: str) -> Target:
    """Split ``url``; credentials in it (``https://user:password@host``) become ``Authorization: Basic``."""
    parts = urlsplit(url)
    scheme = parts.scheme or "http"
    default_port = 443 if scheme == "https" else 80
    port = parts.port or default_port
    host = parts.hostname or "localhost"
    named = f"[{host}]" if ":" in host else host
    host_header = named if port == default_port else f"{named}:{port}"
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    authorization = None
    if parts.username is not None or parts.password is not None:
        credentials = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
        authorization = "Basic " + base64.b64encode(credentials.encode("utf-8")).decode("ascii")
    return Target((scheme, host, port), path, host_header, authorization)
