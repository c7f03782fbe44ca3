"""Validating request bodies before they cost a backend anything, one schema per API.

Only the fields the gateway relies on are checked (their presence and types); every other field is passed
through to the backend untouched, so new parameters keep working. Each schema's ``output_cap`` is the
output limit the request set in its API's own field (``max_tokens``, ``max_output_tokens``); the
endpoint table (proxy/endpoints.py) names the field reserve mode sets when a request sets none.
"""

from __future__ import annotations

from typing import Any, ClassVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError

from maas_gateway.errors import InvalidRequestError

__all__ = [
    "ChatRequest",
    "CompletionRequest",
    "DetokenizeRequest",
    "EmbeddingRequest",
    "FormRequest",
    "GenerationRequest",
    "MessagesRequest",
    "OpenRequest",
    "RerankRequest",
    "ResponsesRequest",
    "ScoreRequest",
    "TokenizeRequest",
    "parse_body",
]


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

    # What the pipeline reads of a body decoded in the worker process (proxy/body_parser.py).
    SUMMARY_FIELDS: ClassVar[tuple[str, ...]] = (
        "model",
        "stream",
        "stream_options",
        "max_tokens",
        "max_completion_tokens",
        "n",
        "best_of",
    )

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


class ResponsesRequest(GenerationRequest):
    """The OpenAI Responses API: ``input`` and an output cap of its own, ``max_output_tokens``."""

    input: StrictStr | list[Any]
    max_output_tokens: StrictInt | None = Field(default=None, ge=1)
    # A conversation continued: only the backend that stored that response can (proxy/pipeline.py).
    previous_response_id: StrictStr | None = None

    SUMMARY_FIELDS: ClassVar[tuple[str, ...]] = (
        "model",
        "stream",
        "max_output_tokens",
        "previous_response_id",
    )

    @property
    def output_cap(self) -> int | None:
        return self.max_output_tokens

    @property
    def output_cap_field(self) -> str:
        return "max_output_tokens"


class MessagesRequest(GenerationRequest):
    """Anthropic's Messages API, where ``max_tokens`` is required (the SDK always sends it)."""

    messages: list[Any] = Field(min_length=1)
    max_tokens: StrictInt = Field(ge=1)  # required here

    SUMMARY_FIELDS: ClassVar[tuple[str, ...]] = ("model", "stream", "max_tokens")


class RerankRequest(GenerationRequest):
    query: StrictStr | dict[str, Any]
    documents: list[Any] = Field(min_length=1)


class ScoreRequest(GenerationRequest):
    """vLLM's score: ``text_1`` against ``text_2`` (strings or lists; newer servers also take
    ``queries``/``documents``, which pass through)."""


class TokenizeRequest(GenerationRequest):
    """``prompt`` or chat ``messages``; the backend says which it lacks."""


class DetokenizeRequest(GenerationRequest):
    tokens: list[StrictInt]


class OpenRequest(GenerationRequest):
    """An operator's extra path: any JSON object; only ``model`` and ``stream`` are read."""


class FormRequest(GenerationRequest):
    """A multipart form's fields the pipeline reads (audio); built by proxy/multipart.py."""


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
    if isinstance(request, ChatRequest | MessagesRequest):
        for index, item in enumerate(request.messages):
            if not isinstance(item, dict):
                field = f"messages.{index}"
                raise InvalidRequestError(
                    f"The field `{field}` is invalid: Input should be a valid dictionary.",
                    code="invalid_value",
                    param=field,
                )
    return data, request
