"""The inference API the gateway offers: one row per endpoint, read by the pipeline.

Every model-server endpoint passes through the same steps (authenticate, validate, route, limit,
forward, meter); what differs between them is data, and that is all in ``Endpoint``:

==========================  ======  =========  ==========  ==================  =========  ========  =========
path(s)                     method  body       model in    max-tokens field    usage      stream    charged
==========================  ======  =========  ==========  ==================  =========  ========  =========
/v1/chat/completions        POST    json       ``model``   ``max_tokens``      openai     openai    tokens
/v1/completions             POST    json       ``model``   ``max_tokens``      openai     openai    tokens
/v1/embeddings              POST    json       ``model``   (none)              openai     no        tokens
/v1/responses               POST    json       ``model``   ``max_output_...``  in/out     response  tokens
/v1/messages                POST    json       ``model``   ``max_tokens``      in/out     message   tokens
/v1/rerank, /v2/rerank      POST    json       ``model``   (none)              read-only  no        tokens
/v1/score                   POST    json       ``model``   (none)              read-only  no        tokens
/tokenize, /detokenize      POST    json       ``model``   (none)              (none)     no        requests
/v1/audio/transcriptions    POST    multipart  form field  (none)              audio      openai    tokens
/v1/audio/translations      POST    multipart  form field  (none)              audio      openai    tokens
==========================  ======  =========  ==========  ==================  =========  ========  =========

Each may also be reached under a model's path prefix (``/<prefix>/v1/responses``, ``/<prefix>/tokenize``).
Errors are OpenAI's shape everywhere but on ``/v1/messages``, where they are Anthropic's. An operator's
``extra_paths`` are served by ``extra_endpoint``: JSON, request-limited, tokens charged when the answer
reports them. ``GET``/``DELETE /v1/responses/{id}`` are not generation and are served apart
(proxy/stored_responses.py).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache
from typing import Literal

from maas_gateway.proxy.schemas import (
    ChatRequest,
    CompletionRequest,
    DetokenizeRequest,
    EmbeddingRequest,
    FormRequest,
    GenerationRequest,
    MessagesRequest,
    OpenRequest,
    RerankRequest,
    ResponsesRequest,
    ScoreRequest,
    TokenizeRequest,
)
from maas_gateway.proxy.usage_readers import (
    UsageReader,
    audio_usage,
    input_output_usage,
    openai_usage,
    read_only_usage,
)

__all__ = [
    "ENDPOINTS",
    "Endpoint",
    "ErrorShape",
    "StreamEvents",
    "extra_endpoint",
    "split_prefix",
]


class StreamEvents(Enum):
    """Where a stream's events carry its usage and generated text (proxy/sse.py)."""

    OPENAI = "openai"  # chunks with ``choices``; ``usage`` in the last, asked for by ``stream_options``
    RESPONSE = "response"  # typed events; usage in ``response.completed``'s ``response.usage``
    MESSAGE = "message"  # Anthropic: input in ``message_start``, output in each ``message_delta``


class ErrorShape(Enum):
    OPENAI = "openai"  # {"error": {"message", "type", "param", "code"}}
    ANTHROPIC = "anthropic"  # {"type": "error", "error": {"type", "message"}}


@dataclass(frozen=True, slots=True)
class Endpoint:
    """How one endpoint's requests are read, limited and metered; ``path`` is what the backend is sent
    and what the ledger and metrics record."""

    path: str
    schema: type[GenerationRequest]
    body: Literal["json", "multipart"] = "json"
    # The field reserve mode sets to its default when a request sets no output cap (None: the endpoint
    # generates nothing, or its output is not bounded by a field: nothing is set, nothing reserved).
    max_tokens_field: str | None = None
    usage: UsageReader = openai_usage
    streams: StreamEvents | None = None  # None: never streamed
    stream_options: bool = False  # whether the backend is asked for usage in `stream_options`
    token_charged: bool = True  # False: counted by request only, whatever the answer says
    estimate_missing: bool = True  # no usage in the answer: estimate it (else charge none)
    json_answers: bool = True  # False: the answer may be text (audio's `response_format`)
    errors: ErrorShape = ErrorShape.OPENAI


def _rows(*endpoints: Endpoint) -> dict[str, Endpoint]:
    return {endpoint.path: endpoint for endpoint in endpoints}


_CHAT = Endpoint(
    "/v1/chat/completions",
    ChatRequest,
    max_tokens_field="max_tokens",
    streams=StreamEvents.OPENAI,
    stream_options=True,
)
_AUDIO = Endpoint(
    "/v1/audio/transcriptions",
    FormRequest,
    body="multipart",
    usage=audio_usage,
    streams=StreamEvents.OPENAI,
    estimate_missing=False,
    json_answers=False,
)
_RERANK = Endpoint("/v1/rerank", RerankRequest, usage=read_only_usage)
_TOKENIZE = Endpoint("/tokenize", TokenizeRequest, token_charged=False)

ENDPOINTS: dict[str, Endpoint] = _rows(
    _CHAT,
    dataclasses.replace(_CHAT, path="/v1/completions", schema=CompletionRequest),
    Endpoint("/v1/embeddings", EmbeddingRequest),
    Endpoint(
        "/v1/responses",
        ResponsesRequest,
        max_tokens_field="max_output_tokens",
        usage=input_output_usage,
        streams=StreamEvents.RESPONSE,
    ),
    Endpoint(
        "/v1/messages",
        MessagesRequest,
        max_tokens_field="max_tokens",
        usage=input_output_usage,
        streams=StreamEvents.MESSAGE,
        errors=ErrorShape.ANTHROPIC,
    ),
    _RERANK,
    dataclasses.replace(_RERANK, path="/v2/rerank"),
    Endpoint("/v1/score", ScoreRequest, usage=read_only_usage),
    _TOKENIZE,
    dataclasses.replace(_TOKENIZE, path="/detokenize", schema=DetokenizeRequest),
    _AUDIO,
    dataclasses.replace(_AUDIO, path="/v1/audio/translations"),
)


# Built once per path: a frozen row took about 1.5 µs to build per request (a cached one 0.1 µs), and the
# paths are the configuration's, so few (a reload that drops one leaves only a row nobody asks for).
@lru_cache(maxsize=1024)
def extra_endpoint(path: str) -> Endpoint:
    """The row for an operator's extra path: any JSON object, streamed in OpenAI's way if asked, tokens
    charged only when the answer reports them (never estimated, never reserved)."""
    return Endpoint(path, OpenRequest, streams=StreamEvents.OPENAI, estimate_missing=False)


def split_prefix(path: str, known: frozenset[str] = frozenset()) -> tuple[str | None, str]:
    """A model's path prefix and the API path under it: ``/m/v1/x`` is ``("m", "/v1/x")`` and
    ``/m/tokenize`` ``("m", "/tokenize")``; a path without one is ``(None, path)``. ``known`` adds the
    operators' extra paths to the table's."""
    if path.startswith("/v1/") or path in ENDPOINTS:
        return None, path
    first, _, rest = path[1:].partition("/")
    rest = "/" + rest
    if rest.startswith(("/v1/", "/v2/")) or rest in ENDPOINTS or rest in known:
        return first, rest
    return None, path
