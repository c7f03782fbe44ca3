"""This gateway's address as the browser sees it, for the examples the Models page shows.

Display only: nothing is decided from it. Even so, ``X-Forwarded-Host`` and ``X-Forwarded-Proto`` are
believed only from a trusted proxy (``server.trusted_proxies``), as for client addresses, and a host that
is not a plain host name with an optional port is replaced by the address the gateway listens on.
"""

from __future__ import annotations

import re

from maas_gateway.http.asgi import Scope, request_header
from maas_gateway.http.forwarded import TrustedProxies, came_over_https

__all__ = ["external_origin"]

# A DNS name or IPv4 address, or a bracketed IPv6 literal, with an optional port.
_HOST = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$")


def external_origin(scope: Scope, trusted: TrustedProxies) -> str:
    """``scheme://host[:port]`` of the gateway as the request reached it."""
    scheme = "https" if came_over_https(scope, trusted) else "http"
    host = None
    client: tuple[str, int] | None = scope.get("client")
    if client is not None and trusted and client[0] in trusted:
        forwarded = request_header(scope, b"x-forwarded-host")
        if forwarded:
            host = forwarded.split(",")[-1].strip()  # the nearest proxy's value
    if host is None:
        host = request_header(scope, b"host")
    if not host or not _HOST.match(host):
        server: tuple[str, int | None] | None = scope.get("server")
        listening = server[0] if server is not None else "localhost"
        listening = f"[{listening}]" if ":" in listening else listening
        port = server[1] if server is not None else None
        host = listening if port is None else f"{listening}:{port}"
    return f"{scheme}://{host}"
