"""uvicorn's httptools protocol, sending a response's head and first body bytes in one system call.

uvicorn writes the status line and headers as soon as the app sends ``http.response.start``, and the body
in a second write when ``http.response.body`` follows. uvloop sends each write at once, so every answer
costs two ``send()`` calls and two TCP segments. The gateway always sends the body right after the head,
in the same step of the event loop, so holding the head back until that write costs nothing in latency and
saves a system call per request (bench/README.md). A head that is not followed by a body in the same
step (a stream whose first event is still on its way, ``100 Continue``) leaves at the end of that step.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["CoalescingHttpToolsProtocol"]


class _HeadHoldingTransport:
    """A transport wrapper that keeps a response head until the next write or the loop step's end."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held + data)
        elif data.startswith(b"HTTP/1.1 ") and data.endswith(b"\r\n\r\n"):
            self._held = data
            self._loop.call_soon(self.flush)
        else:
            self._transport.write(data)

    def flush(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        # Everything else (is_closing, pause_reading, get_extra_info, ...) is the real transport's.
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        holding = _HeadHoldingTransport(transport, self.loop)  # type: ignore[arg-type]  # a stand-in for the transport
        super().connection_made(holding)  # type: ignore[arg-type]  # a stand-in for the transport
