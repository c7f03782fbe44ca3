"""Reading a request to the simulator: its JSON body, model, ``max_tokens``, prompt and inputs."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from maas_gateway.simulator.shapes import error_response
from maas_gateway.tokens import prompt_text

__all__ = ["BadRequest", "embedding_inputs", "last_user_text", "max_tokens_of", "read_body"]


class BadRequest(Exception):
    """A request the simulator refuses, with the OpenAI-shaped answer that says why."""

    def __init__(self, status: int, message: str, code: str) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code

    def response(self) -> Response:
        return error_response(self.status, self.message, self.code)


async def read_body(request: Request, models: tuple[str, ...]) -> dict[str, Any]:
    """The request's JSON object, which must name one of ``models``."""
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise BadRequest(400, "The request body is not valid JSON.", "invalid_json") from None
    if not isinstance(body, dict):
        raise BadRequest(400, "The request body must be a JSON object.", "invalid_json")
    model = body.get("model")
    if model not in models:
        raise BadRequest(404, f"The model `{model}` does not exist.", "model_not_found")
    return body


def max_tokens_of(body: dict[str, Any]) -> int | None:
    """The completion's token cap: ``max_completion_tokens`` or else ``max_tokens``, if given."""
    max_tokens = body.get("max_completion_tokens")
    if max_tokens is None:
        max_tokens = body.get("max_tokens")
    if max_tokens is not None and (not _is_int(max_tokens) or max_tokens < 1):
        raise BadRequest(400, "`max_tokens` must be a positive integer.", "invalid_value")
    return max_tokens


def last_user_text(body: dict[str, Any]) -> str:
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") == "user":
                return prompt_text({"messages": [message]})
    return ""


def embedding_inputs(raw: Any) -> list[str] | None:
    """The texts to embed, or None if ``input`` is not a string, strings, token ids or lists of them."""
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list) and raw:
        if all(isinstance(item, str) for item in raw):
            return list(raw)
        if all(_is_int(item) for item in raw):
            return [" ".join(map(str, raw))]
        if all(isinstance(item, list) and item and all(_is_int(i) for i in item) for item in raw):
            return [" ".join(map(str, item)) for item in raw]
    return None


def _is_int(value: Any) -> bool:
    """JSON integers only: ``true`` is not 1 here."""
    return isinstance(value, int) and not isinstance(value, bool)
