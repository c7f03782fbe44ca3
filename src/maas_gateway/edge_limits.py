"""The limits of the HTTP edge, and the uvicorn configuration that carries them to every connection.

uvicorn builds one protocol object per connection from its ``Config``; with ``--workers`` that ``Config``
is pickled into each worker process, so the limits travel as plain values on a module-level subclass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import uvicorn

from maas_gateway.config.server_settings import ServerSettings

__all__ = ["EdgeConfig", "EdgeLimits"]


@dataclass(frozen=True, slots=True)
class EdgeLimits:
    """What one connection may cost before the edge refuses it (docs/security.md)."""

    max_header_bytes: int = 64 * 1024
    max_headers: int = 100
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_connections: int = 1000

    @classmethod
    def of(cls, server: ServerSettings) -> EdgeLimits:
        return cls(
            max_header_bytes=server.max_header_bytes,
            max_headers=server.max_headers,
            header_timeout=server.header_timeout,
            body_timeout=server.body_timeout,
            max_connections=server.max_connections,
        )


class EdgeConfig(uvicorn.Config):
    """uvicorn's configuration plus the edge limits the gateway's protocol reads (edge_protocol.py)."""

    def __init__(self, app: Any, *, edge: EdgeLimits, **settings: Any) -> None:
        super().__init__(app, **settings)
        self.edge = edge
