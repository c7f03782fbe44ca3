"""A gateway error in the shape of the API it answers: OpenAI's everywhere, Anthropic's on Messages.

Anthropic's clients read ``{"type": "error", "error": {"type", "message"}}`` and map the error's
``type`` to their exception classes; the types below are the ones its API documents, by status.
"""

from __future__ import annotations

import orjson

from maas_gateway.errors import GatewayError
from maas_gateway.proxy.endpoints import ErrorShape

__all__ = ["error_body", "stream_error_event"]

_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    529: "overloaded_error",
}


def error_body(error: GatewayError, shape: ErrorShape) -> bytes:
    if shape is ErrorShape.OPENAI:
        return error.body()
    inner = {"type": _anthropic_type(error), "message": error.message}
    return orjson.dumps({"type": "error", "error": inner})


def stream_error_event(error: GatewayError, shape: ErrorShape) -> bytes:
    """The event that tells a client, in-band, that its stream broke off."""
    if shape is ErrorShape.OPENAI:
        return b"data: " + error.body() + b"\n\n"
    return b"event: error\ndata: " + error_body(error, shape) + b"\n\n"


def _anthropic_type(error: GatewayError) -> str:
    status = error.status_code
    return _ANTHROPIC_TYPES.get(status) or ("api_error" if status >= 500 else "invalid_request_error")
