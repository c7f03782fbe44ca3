"""Thin ASGI plumbing: reading a bounded body, sending whole responses, request headers."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from maas_gateway.errors import GatewayError, InvalidRequestError, PayloadTooLargeError

__all__ = [
    "HOP_BY_HOP",
    "ASGIApp",
    "Receive",
    "Scope",
    "Send",
    "read_body",
    "request_header",
    "send_error",
    "send_response",
]

# Headers that describe one connection, not the message (RFC 9110, 7.6.1), plus those the gateway
# recomputes itself.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "content-encoding",
        "date",
        "server",
        "accept-encoding",
        "expect",  # the gateway has read the whole body before it forwards anything
    }
)


def request_header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """Read the request body, failing with 413 as soon as it passes ``limit`` bytes."""
    declared = request_header(scope, b"content-length")
    if declared is not None:
        if not declared.isdigit():
            raise InvalidRequestError("The Content-Length header is not a number.", code="invalid_header")
        if int(declared) > limit:
            raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise InvalidRequestError("The client went away before sending the whole body.")
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _too_large(limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(f"The request body is larger than the limit of {limit} bytes.")


async def send_response(
    send: Send,
    status: int,
    body: bytes,
    headers: Iterable[tuple[bytes, bytes]] = (),
    content_type: bytes = b"application/json",
) -> None:
    raw = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def send_error(
    send: Send,
    error: GatewayError,
    headers: Iterable[tuple[bytes, bytes]] = (),
    body: bytes | None = None,
) -> None:
    """``error`` as its status, headers and body (OpenAI's shape unless ``body`` is another's)."""
    extra = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in error.headers().items()]
    await send_response(send, error.status_code, error.body() if body is None else body, [*headers, *extra])
