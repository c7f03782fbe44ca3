"""Forwarding one request to a backend: whole answers, and SSE streams relayed event by event."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from maas_gateway.errors import BackendError, GatewayError
from maas_gateway.http.asgi import HOP_BY_HOP, Receive, Send
from maas_gateway.proxy.endpoints import ErrorShape, StreamEvents
from maas_gateway.proxy.error_shapes import stream_error_event
from maas_gateway.proxy.exchange import Usage
from maas_gateway.proxy.public_name import PublicName
from maas_gateway.proxy.sse import SSEFollower
from maas_gateway.proxy.usage_readers import UsageReader, openai_usage
from maas_gateway.upstream import UpstreamResponse

__all__ = [
    "BackendStatusError",
    "BufferedAnswer",
    "StreamResult",
    "end_stream",
    "passthrough_headers",
    "read_answer",
    "relay_stream",
]

# Headers a backend may not set on the client's answer: the gateway owns them.
_RESERVED_RESPONSE_PREFIXES = ("x-ratelimit-", "retry-after", "x-request-id")


class BackendStatusError(GatewayError):
    """A backend's own 4xx, passed on with its status and message in OpenAI's shape."""

    error_type = "invalid_request_error"

    def __init__(self, status: int, message: str, code: str) -> None:
        super().__init__(message, code=code)
        self.status_code = status


@dataclass(slots=True)  # per request: a frozen dataclass costs 4x as much to build
class BufferedAnswer:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    usage: Usage | None
    output_chars: int
    content_type: bytes = b"application/json"
    response_id: str | None = None  # the Responses API's `id`, for GET and DELETE by id later


@dataclass(slots=True)  # per request: a frozen dataclass costs 4x as much to build
class StreamResult:
    usage: Usage | None
    client_disconnected: bool
    first_event_at: float | None  # perf_counter time the first event reached the client
    generated_chunks: int
    generated_chars: int
    broken_off: GatewayError | None  # why the backend's stream ended early, if it did
    response_id: str | None = None  # the Responses API's `response.id`


def passthrough_headers(headers: Sequence[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [
        (name.encode("latin-1"), value.encode("latin-1"))
        for name, value in headers
        if name not in HOP_BY_HOP and not name.startswith(_RESERVED_RESPONSE_PREFIXES)
    ]


async def read_answer(
    response: UpstreamResponse,
    renamed: PublicName | None = None,
    usage_of: UsageReader = openai_usage,
    *,
    json_only: bool = True,
) -> BufferedAnswer:
    """Read a whole backend answer; raise for backend failures, map backend 4xx to OpenAI errors.

    With ``renamed``, the answer and any error show the model's public name, never the served one.
    ``usage_of`` reads the usage in the API's words; without ``json_only``, an answer that is not JSON
    (audio as text or subtitles) is passed on as it came, with its content type and no usage.
    """
    body = await response.read()
    if response.status >= 400:
        raise backend_failure(response.status, body, renamed)
    headers = [h for h in passthrough_headers(response.headers) if h[0] != b"content-type"]
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        if json_only:
            raise BackendError("The model backend sent an answer that is not JSON.") from None
        payload = None
    if not isinstance(payload, dict):
        if json_only:
            raise BackendError("The model backend sent an answer that is not a JSON object.")
        kind = next((v for n, v in response.headers if n == "content-type"), "application/octet-stream")
        return BufferedAnswer(response.status, headers, body, None, 0, kind.encode("latin-1"))
    usage = usage_of(payload)
    chars = 0 if usage is not None else _output_chars(payload)
    if renamed is not None:
        body = renamed.answer(body, payload)
    ident = payload.get("id")
    return BufferedAnswer(
        response.status, headers, body, usage, chars, response_id=ident if isinstance(ident, str) else None
    )


def _output_chars(payload: dict[str, Any]) -> int:
    """How much text an answer carries, to estimate its tokens when the backend reports no usage."""
    choices = payload.get("choices")
    if not isinstance(choices, list):
        return 0
    chars = 0
    for choice in choices:
        if isinstance(choice, dict):
            message = choice.get("message")
            text = message.get("content") if isinstance(message, dict) else choice.get("text")
            if isinstance(text, str):
                chars += len(text)
    return chars


def backend_failure(status: int, body: bytes, renamed: PublicName | None = None) -> GatewayError:
    message, code = _backend_message(body)
    if renamed is not None:
        message, code = renamed.message(message), renamed.message(code)
    if status >= 500 or status in (401, 403, 407):
        # The backend's own auth or crash is the operator's problem, not the caller's.
        detail = f" It said: {message.rstrip('.')}." if message else ""
        return BackendError(f"The model backend failed with status {status}.{detail}")
    return BackendStatusError(status, message or f"The model backend rejected the request ({status}).", code)


def _backend_message(body: bytes) -> tuple[str, str]:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "", "backend_error"
    if isinstance(payload, dict):
        nested = payload.get("error")
        inner: dict[str, Any] = nested if isinstance(nested, dict) else payload
        message = inner.get("message")
        code = inner.get("code")
        return (str(message)[:500] if message else ""), (str(code) if code else "backend_error")
    return "", "backend_error"


async def end_stream(send: Send) -> None:
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def relay_stream(
    response: UpstreamResponse,
    send: Send,
    receive: Receive,
    headers: list[tuple[bytes, bytes]],
    *,
    client_wants_usage: bool,
    renamed: PublicName | None = None,
    kind: StreamEvents = StreamEvents.OPENAI,
    errors: ErrorShape = ErrorShape.OPENAI,
) -> StreamResult:
    """Relay an SSE answer event by event; stop the backend if the client leaves.

    With ``renamed``, every event shows the model's public name where the backend wrote the served one.
    ``kind`` says where the API's events carry usage; ``errors``, how a broken-off stream is reported.

    The response is left open: the caller charges the usage first and then ends it with ``end_stream``,
    so a client that sees the end of a stream also sees its tokens counted.
    """
    follower = SSEFollower(client_wants_usage=client_wants_usage, events=kind)
    disconnected = asyncio.Event()

    async def watch_client() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        disconnected.set()
        response.close()  # closing the upstream connection stops generation on the backend

    watcher = asyncio.create_task(watch_client())
    start = {"type": "http.response.start", "status": response.status, "headers": headers}
    await send(start)
    first_event_at: float | None = None
    broken_off: GatewayError | None = None
    try:
        async for chunk in response.iter_chunks():
            if events := follower.feed(chunk):
                # Events that arrived together leave together: one write to the client, not one each.
                body = events[0] if len(events) == 1 else b"".join(events)
                if renamed is not None:
                    body = renamed.events(body)
                await send({"type": "http.response.body", "body": body, "more_body": True})
                if first_event_at is None:
                    first_event_at = time.perf_counter()
        if events := follower.flush():
            body = b"".join(events) if renamed is None else renamed.events(b"".join(events))
            await send({"type": "http.response.body", "body": body, "more_body": True})
    except GatewayError as failure:
        if not disconnected.is_set():
            # The backend broke mid-stream: tell the client in-band, since the status is already sent.
            broken_off = failure
            error = BackendError("The model backend broke off the stream.")
            payload = stream_error_event(error, errors)
            await send({"type": "http.response.body", "body": payload, "more_body": True})
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    return StreamResult(
        usage=follower.final_usage(),
        client_disconnected=disconnected.is_set(),
        first_event_at=first_event_at,
        generated_chunks=follower.content_chunks,
        generated_chars=follower.content_chars,
        broken_off=broken_off,
        response_id=follower.response_id,
    )
