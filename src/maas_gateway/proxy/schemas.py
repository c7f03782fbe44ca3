"""Validating OpenAI request bodies before they cost a backend anything.

Only the fields the gateway relies on are checked (their presence and types); every other field is passed
through to the backend untouched, so new OpenAI parameters keep working.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError

from maas_gateway.errors import InvalidRequestError

__all__ = ["ENDPOINT_SCHEMAS", "GenerationRequest", "parse_body"]


class GenerationRequest(BaseModel):
    """The fields common to chat, completions and embeddings."""

    model_config = ConfigDict(extra="allow")

    model: StrictStr | None = None
    stream: StrictBool | None = False
    stream_options: dict[str, Any] | None = None
    max_tokens: StrictInt | None = Field(default=None, ge=1)
    max_completion_tokens: StrictInt | None = Field(default=None, ge=1)
    n: StrictInt | None = Field(default=None, ge=1)  # answers generated, each up to the output cap
    best_of: StrictInt | None = Field(default=None, ge=1)  # completions: generated, of which n are returned

    @property
    def output_cap(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    @property
    def output_cap_field(self) -> str:
        """The field that carries the output cap: the one the request set, else ``max_tokens``."""
        return "max_completion_tokens" if self.max_completion_tokens is not None else "max_tokens"

    @property
    def choices(self) -> int:
        """How many answers the backend generates, each up to the output cap."""
        return max(self.n or 1, self.best_of or 1)


class ChatRequest(GenerationRequest):
    # Each message is checked to be an object by parse_body, in Python: pydantic-core would check
    # 300,000 messages in one call that holds the GIL for ~100 ms (proxy/body_parser.py).
    messages: list[Any] = Field(min_length=1)


class CompletionRequest(GenerationRequest):
    prompt: StrictStr | list[StrictStr] | list[StrictInt] | list[list[StrictInt]]


class EmbeddingRequest(GenerationRequest):
    input: StrictStr | list[StrictStr] | list[StrictInt] | list[list[StrictInt]]


ENDPOINT_SCHEMAS: dict[str, type[GenerationRequest]] = {
    "/v1/chat/completions": ChatRequest,
    "/v1/completions": CompletionRequest,
    "/v1/embeddings": EmbeddingRequest,
}


def parse_body(raw: bytes, schema: type[GenerationRequest]) -> tuple[dict[str, Any], GenerationRequest]:
    """Decode and validate ``raw``; raise a 400 whose message says what is wrong."""
    if not raw:
        raise InvalidRequestError("The request body is empty; send a JSON object.", code="invalid_json")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "utf-8" in str(exc).lower():
            raise InvalidRequestError(
                "The request body is not valid UTF-8.", code="invalid_encoding"
            ) from None
        raise InvalidRequestError("The request body is not valid JSON.", code="invalid_json") from None
    if not isinstance(data, dict):
        raise InvalidRequestError("The request body must be a JSON object.", code="invalid_json")
    try:
        request = schema.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = ".".join(str(part) for part in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        raise InvalidRequestError(
            f"The field `{field}` is invalid: {message}.", code="invalid_value", param=field
        ) from None
    if isinstance(request, ChatRequest):
        for index, item in enumerate(request.messages):
            if not isinstance(item, dict):
                field = f"messages.{index}"
                raise InvalidRequestError(
                    f"The field `{field}` is invalid: Input should be a valid dictionary.",
                    code="invalid_value",
                    param=field,
                )
    return data, request
