"""The upstream client: how the gateway talks to model backends.

One interface (``base``), the real implementation (``httptools_transport``, one connection in
``backend_connection``, TLS settings in ``tls``), an in-memory one answering with a function
(``memory``, for tests), and the exceptions every implementation maps its failures to.
"""

from maas_gateway.errors import BackendConnectError, BackendTimeoutError, BackendUnavailableError
from maas_gateway.upstream.base import (
    UpstreamRequest,
    UpstreamResponse,
    UpstreamTransport,
)
from maas_gateway.upstream.httptools_transport import HttptoolsTransport
from maas_gateway.upstream.memory import InMemoryTransport, MemoryAnswer
from maas_gateway.upstream.tls import tls_context

__all__ = [
    "BackendConnectError",
    "BackendTimeoutError",
    "BackendUnavailableError",
    "HttptoolsTransport",
    "InMemoryTransport",
    "MemoryAnswer",
    "UpstreamRequest",
    "UpstreamResponse",
    "UpstreamTransport",
    "tls_context",
]
