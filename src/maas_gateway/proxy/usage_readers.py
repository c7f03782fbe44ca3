"""Reading what a backend says a request used, from a whole JSON answer, in each API's own words.

OpenAI's chat, completions and embeddings say ``usage.prompt_tokens``/``completion_tokens``; the
Responses and Messages APIs say ``usage.input_tokens``/``output_tokens``; rerank and score report the
tokens they read (``prompt_tokens``, or only ``total_tokens`` for rerank), all of them input; audio
reports tokens (``input_tokens``/``output_tokens``) or only the audio's duration, which is no tokens.
Each reader returns ``None`` when the answer carries no usable usage.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeGuard

from maas_gateway.proxy.exchange import Usage

__all__ = [
    "UsageReader",
    "audio_usage",
    "input_output_usage",
    "openai_usage",
    "read_only_usage",
    "usage_in_words",
]

# A whole answer's parsed JSON object to its usage.
UsageReader = Callable[[dict[str, Any]], Usage | None]


def openai_usage(payload: dict[str, Any]) -> Usage | None:
    return Usage.from_backend(payload.get("usage"))


def input_output_usage(payload: dict[str, Any]) -> Usage | None:
    """``usage.input_tokens`` and ``usage.output_tokens`` (Responses, Messages, audio in tokens)."""
    return usage_in_words(payload.get("usage"))


def usage_in_words(usage: Any) -> Usage | None:
    """An ``input_tokens``/``output_tokens`` usage object; None when either is missing or wrong."""
    if not isinstance(usage, dict):
        return None
    prompt, completion = usage.get("input_tokens"), usage.get("output_tokens", 0)
    if not _count(prompt) or not _count(completion):
        return None
    return Usage(prompt, completion)


def read_only_usage(payload: dict[str, Any]) -> Usage | None:
    """Tokens read and none written (rerank, score): ``prompt_tokens``, else ``total_tokens``."""
    usage = payload.get("usage")
    if not isinstance(usage, dict):
        return None
    read = usage.get("prompt_tokens")
    if read is None:
        read = usage.get("total_tokens")
    return Usage(read, 0) if _count(read) else None


def _count(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def audio_usage(payload: dict[str, Any]) -> Usage:
    """Tokens when the backend counts them (either wording); an answer that gives only the audio's
    duration, or nothing, used no tokens: it is metered by request alone, never guessed."""
    return input_output_usage(payload) or openai_usage(payload) or Usage(0, 0)
