"""The one interface the gateway uses to talk to model backends.

Every implementation maps its own failures once, at its edge: callers only ever see a response,
``BackendUnavailableError`` (502: refused, reset, closed early, malformed) or ``BackendTimeoutError``
(504). A connection that could not be opened at all is ``BackendConnectError``, a kind of
``BackendUnavailableError``: nothing of the request was sent, so it may be sent to another backend. The
real implementation is ``httptools_transport.HttptoolsTransport``; ``memory.InMemoryTransport`` answers
requests with a function, for tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from maas_gateway.errors import BackendConnectError, BackendTimeoutError, BackendUnavailableError

__all__ = [
    "BackendConnectError",
    "BackendTimeoutError",
    "BackendUnavailableError",
    "UpstreamRequest",
    "UpstreamResponse",
    "UpstreamTransport",
]


@dataclass(slots=True)  # per request: a frozen dataclass costs 4x as much to build
class UpstreamRequest:
    """What to send: ``url`` is the backend's whole URL; ``content-length`` and ``host`` are added."""

    method: str
    url: str
    headers: Sequence[tuple[str, str]]
    body: bytes


class UpstreamResponse(Protocol):
    """An answer whose head has arrived; its body is read once, whole or chunk by chunk.

    Header names are lower case. Reading raises ``BackendUnavailableError`` or ``BackendTimeoutError``
    when the backend breaks off or goes silent.
    """

    status: int
    headers: Sequence[tuple[str, str]]

    async def read(self) -> bytes:
        """The whole body."""
        ...

    def iter_chunks(self) -> AsyncIterator[bytes]:
        """The body as the backend sends it, chunk by chunk."""
        ...

    def close(self) -> None:
        """Abort the exchange (the backend sees the connection close) or release it when done."""
        ...


class UpstreamTransport(Protocol):
    """Sends requests to backends; raises only the two errors above for anything that goes wrong."""

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        """Send ``request`` and return once the status line and headers have arrived."""
        ...

    async def aclose(self) -> None:
        """Close the idle connections and stop expiring them; the transport is not used afterwards."""
        ...
