"""The `server` section: where the gateway listens, and the limits of its HTTP edge.

The edge limits (header size and count, read timeouts, connections) protect the event loop from clients
that send too much or too slowly; docs/security.md lists them with their defaults.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from pydantic import Field, field_validator, model_validator

from maas_gateway.config.base import Strict
from maas_gateway.config.durations import Duration

__all__ = ["ServerSettings"]

logger = logging.getLogger("maas_gateway")


class ServerSettings(Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    upstream_connect_timeout: Duration = 5.0
    upstream_read_timeout: Duration = 300.0
    upstream_max_connections: int = Field(default=1000, ge=1)
    upstream_idle_timeout: Duration = Field(
        default=60.0, description="A backend connection unused this long is closed."
    )
    upstream_ca_bundle: str | None = Field(
        default=None, description="PEM file of CAs trusted for https backends, besides the system's."
    )
    upstream_client_cert: str | None = Field(
        default=None, description="PEM certificate presented to https backends that ask for one."
    )
    upstream_client_key: str | None = Field(
        default=None, description="PEM key of `upstream_client_cert`, if it is not in that file."
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

    @model_validator(mode="before")
    @classmethod
    def _removed_settings(cls, data: Any) -> Any:
        """``upstream_client`` chose between two backend clients; one is left, so the setting is ignored.

        Accepted with a warning rather than refused: a file written for an earlier version still starts,
        and whichever value it names, the backends receive the same requests.
        """
        if isinstance(data, dict) and "upstream_client" in data:
            logger.warning(
                "The setting server.upstream_client was removed and is ignored: the gateway always uses "
                "its own HTTP client for backends. Delete it from the configuration file."
            )
            data = {name: value for name, value in data.items() if name != "upstream_client"}
        return data

    @model_validator(mode="after")
    def _key_needs_certificate(self) -> ServerSettings:
        # The files themselves are read at start-up: a configuration is often validated elsewhere.
        if self.upstream_client_key is not None and self.upstream_client_cert is None:
            raise ValueError("`upstream_client_key` is the key of `upstream_client_cert`, which is not set.")
        return self

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
