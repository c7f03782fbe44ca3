"""The `server` section: where the gateway listens, and the limits of its HTTP edge.

The edge limits (header size and count, read timeouts, connections) protect the event loop from clients
that send too much or too slowly; docs/security.md lists them with their defaults.
"""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, field_validator

from maas_gateway.config.base import Strict
from maas_gateway.config.durations import Duration

__all__ = ["ServerSettings"]


class ServerSettings(Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    upstream_connect_timeout: Duration = 5.0
    upstream_read_timeout: Duration = 300.0
    upstream_max_connections: int = Field(default=1000, ge=1)
    upstream_client: Literal["httptools", "aiohttp"] = Field(
        default="httptools", description="The backend HTTP client: the lean default, or aiohttp."
    )
    access_log: bool = True
    max_header_bytes: int = Field(
        default=64 * 1024,
        ge=1024,
        le=16 * 1024 * 1024,
        description="Largest request line and headers of one request, in bytes; more is refused with 431.",
    )
    max_headers: int = Field(
        default=100, ge=1, le=10_000, description="Most header fields in one request; more is a 431."
    )
    header_timeout: Duration = Field(
        default=10.0,
        description="Longest time from a connection's opening, or a request's first byte, until its "
        "headers are complete; then 408.",
    )
    body_timeout: Duration = Field(
        default=30.0,
        description="Longest time to receive a whole request body once the headers are complete; then 408.",
    )
    max_connections: int = Field(
        default=1000,
        ge=1,
        description="Most open client connections per listener and process; more are answered 503.",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses or CIDR ranges of proxies whose X-Forwarded-For the gateway believes.",
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, entries: list[str]) -> list[str]:
        networks = []
        for entry in entries:
            try:
                networks.append(str(ipaddress.ip_network(entry.strip(), strict=False)))
            except ValueError:
                raise ValueError(
                    f"'{entry}' is not an IP address or a CIDR range such as 10.0.0.0/8 or fd00::/8."
                ) from None
        return networks
