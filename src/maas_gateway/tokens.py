"""Token estimates for text when no tokenizer is at hand.

About four characters make a token in English text for the tokenizers of common open models; the gateway
uses this only when a backend reports no ``usage``, and the simulator uses it to count prompts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["CHARS_PER_TOKEN", "PromptSize", "estimate_tokens", "prompt_size", "prompt_text"]

CHARS_PER_TOKEN = 4
_OTHER_PROMPT_FIELDS = ("system", "instructions", "query", "documents", "text_1", "text_2")


def estimate_tokens(text: str) -> int:
    """Tokens in ``text``, rounded up; empty text has none."""
    return -(-len(text) // CHARS_PER_TOKEN)


def prompt_text(body: dict[str, Any]) -> str:
    """The text a request asks the model to read: chat messages, a completion prompt or inputs."""
    parts: list[str] = []
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in messages:
            if isinstance(message, dict):
                _collect(message.get("content"), parts)
    _collect(body.get("prompt"), parts)
    _collect(body.get("input"), parts)
    # The other APIs' prompt fields: Messages' and Responses' instructions, rerank's and score's texts.
    for name in _OTHER_PROMPT_FIELDS:
        if name in body:
            _collect(body[name], parts)
    return "\n".join(parts)


def _collect(value: Any, parts: list[str]) -> None:
    if isinstance(value, str):
        parts.append(value)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                text = item.get("text")
                if isinstance(text, str):
                    parts.append(text)
                elif "content" in item:  # a message in a list of inputs (the Responses API)
                    _collect(item["content"], parts)
            elif isinstance(item, str):
                parts.append(item)
            elif isinstance(item, int) and not isinstance(item, bool):
                parts.append("tok ")  # a pre-tokenised prompt: one token per id
            elif isinstance(item, list):
                _collect(item, parts)


@dataclass(frozen=True, slots=True)
class PromptSize:
    """What bounds and estimates a prompt's tokens: its characters, UTF-8 bytes and chat messages."""

    chars: int
    utf8_bytes: int
    messages: int

    @property
    def estimated_tokens(self) -> int:
        return -(-self.chars // CHARS_PER_TOKEN)


def prompt_size(body: dict[str, Any]) -> PromptSize:
    text = prompt_text(body)
    messages = body.get("messages")
    count = len(messages) if isinstance(messages, list) else 1
    return PromptSize(len(text), len(text.encode("utf-8")), count)
