"""The JSON the simulator answers: completions whole and as SSE chunks, and errors, in OpenAI's shapes."""

from __future__ import annotations

import time
from typing import Any

import orjson
from starlette.responses import Response

from maas_gateway.errors import error_body

__all__ = ["DONE", "StreamChunks", "completion_body", "error_response", "json_response"]

DONE = b"data: [DONE]\n\n"


def json_response(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def error_response(
    status: int,
    message: str,
    code: str,
    *,
    error_type: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """An error in OpenAI's shape, the envelope vLLM uses too: ``{"error": {message, type, param, code}}``."""
    if error_type is None:
        error_type = "invalid_request_error" if status < 500 else "server_error"
    body = error_body(message, error_type, code, param)
    return Response(body, status, headers=headers, media_type="application/json")


def completion_body(
    ident: str, model: str, *, chat: bool, text: str, finish: str, usage: dict[str, int]
) -> bytes:
    choice: dict[str, Any] = {"index": 0, "logprobs": None, "finish_reason": finish}
    if chat:
        choice["message"] = {"role": "assistant", "content": text}
    else:
        choice["text"] = text
    return orjson.dumps(
        {
            "id": ident,
            "object": "chat.completion" if chat else "text_completion",
            "created": int(time.time()),
            "model": model,
            "choices": [choice],
            "usage": usage,
        }
    )


class StreamChunks:
    """The ``data:`` events of one streamed completion, chat or text."""

    __slots__ = ("_chat", "_head")

    def __init__(self, ident: str, model: str, *, chat: bool) -> None:
        self._chat = chat
        kind = "chat.completion.chunk" if chat else "text_completion"
        self._head = {"id": ident, "object": kind, "created": int(time.time()), "model": model}

    def role(self) -> bytes:
        """The chat stream's first event: the assistant's role and no text yet."""
        return self._event([self._piece("", None, role=True)])

    def token(self, text: str) -> bytes:
        return self._event([self._piece(text, None)])

    def finish(self, reason: str) -> bytes:
        return self._event([self._piece(None if self._chat else "", reason)])

    def usage(self, usage: dict[str, int]) -> bytes:
        return self._event([], usage=usage)

    def _event(self, choices: list[dict[str, Any]], **extra: Any) -> bytes:
        payload = {**self._head, "choices": choices, **extra}
        return b"data: " + orjson.dumps(payload) + b"\n\n"

    def _piece(self, text: str | None, reason: str | None, role: bool = False) -> dict[str, Any]:
        if not self._chat:
            return {"index": 0, "text": text or "", "logprobs": None, "finish_reason": reason}
        delta: dict[str, Any] = {} if text is None else {"content": text}
        if role:
            delta["role"] = "assistant"
        return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}
