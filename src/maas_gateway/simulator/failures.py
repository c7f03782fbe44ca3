"""How the simulator fails: injected failures of five kinds, and vLLM's refusal of a too long request.

``--failure-rate`` of the requests fail, each with one of ``--failure-type`` drawn at random:

- ``rate_limit``: a 429 with a ``Retry-After`` header;
- ``context_length``: a 400 saying the context is too long, worded as vLLM words it;
- ``server_error``: a 500;
- ``hang``: nothing is ever sent; the request ends when the client gives up;
- ``cut``: the answer starts and stops half-way, and the connection is closed (a stream without
  ``data: [DONE]``, a whole answer shorter than its ``Content-Length``).
"""

from __future__ import annotations

import logging

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from maas_gateway.simulator.settings import FailureType, SimulatorSettings
from maas_gateway.simulator.shapes import error_response

__all__ = [
    "ConnectionCut",
    "CutResponse",
    "Failures",
    "context_length_error",
    "hide_cuts_from_server_log",
]


class ConnectionCut(Exception):
    """Raised after an answer has started: the server then closes the connection, as a crash would."""


class CutResponse(Response):
    """A whole answer that breaks off: its head promises the whole body, half of it is sent, and then
    the connection is closed."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        half = self.body[: len(self.body) // 2]
        await send({"type": "http.response.body", "body": half, "more_body": True})
        raise ConnectionCut


class _HideCuts(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, BaseExceptionGroup):
            rest = error.split(ConnectionCut)[1]
            return rest is not None
        return not isinstance(error, ConnectionCut)


_HIDE_CUTS = _HideCuts()


def hide_cuts_from_server_log() -> None:
    """Keep uvicorn from logging a traceback for each cut: a cut connection is what was asked for."""
    logging.getLogger("uvicorn.error").addFilter(_HIDE_CUTS)  # the same filter is added once only


def context_length_message(max_model_len: int, prompt_tokens: int, max_tokens: int | None) -> str:
    """vLLM's message for a request longer than the model's context."""
    if max_tokens is None:
        return (
            f"This model's maximum context length is {max_model_len} tokens. However, you requested "
            f"{prompt_tokens} tokens in the messages. Please reduce the length of the messages."
        )
    return (
        f"This model's maximum context length is {max_model_len} tokens. However, you requested "
        f"{prompt_tokens + max_tokens} tokens ({prompt_tokens} in the messages, {max_tokens} in the "
        "completion). Please reduce the length of the messages or completion."
    )


def context_length_error(
    max_model_len: int, prompt_tokens: int, max_tokens: int | None, param: str
) -> Response | None:
    """vLLM's 400 for a prompt and completion longer than the model's context, or None if it fits.

    Without ``max_tokens`` the prompt must leave room for one token, as in vLLM. ``param`` names the
    request field that holds the prompt.
    """
    if max_tokens is None:
        if prompt_tokens < max_model_len:
            return None
    elif prompt_tokens + max_tokens <= max_model_len:
        return None
    message = context_length_message(max_model_len, prompt_tokens, max_tokens)
    return _too_long(message, param)


def _too_long(message: str, param: str) -> Response:
    return error_response(400, message, "context_length_exceeded", param=param)


class Failures:
    """Which requests fail and how, drawn from the simulator's random source."""

    def __init__(self, settings: SimulatorSettings) -> None:
        self._rate = settings.failure_rate
        self._types = settings.failure_types
        self._rng = settings.rng
        self._max_model_len = settings.max_model_len
        self._retry_after = settings.retry_after

    def draw(self) -> FailureType | None:
        """The failure for the next request, or None for most of them."""
        if not self._rate or self._rng.random() >= self._rate:
            return None
        if len(self._types) == 1:
            return self._types[0]
        return self._rng.choice(self._types)

    def refusal(self, failure: FailureType, model: str, prompt_tokens: int, param: str) -> Response | None:
        """The error answer of a failure that is one, or None for ``hang`` and ``cut``."""
        if failure == "rate_limit":
            message = (
                f"Rate limit reached for model `{model}`: the simulator refused this request on purpose. "
                f"Try again in {self._retry_after} s."
            )
            headers = {"retry-after": str(self._retry_after)}
            return error_response(
                429, message, "rate_limit_exceeded", error_type="rate_limit_error", headers=headers
            )
        if failure == "context_length":
            # The numbers say the request is one token too long, whatever its real length.
            length = self._max_model_len
            message = context_length_message(length, prompt_tokens, max(1, length + 1 - prompt_tokens))
            return _too_long(message, param)
        if failure == "server_error":
            return error_response(500, "The simulator failed this request on purpose.", "injected")
        return None
