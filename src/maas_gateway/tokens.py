"""Token estimates for text when no tokenizer is at hand.

About four characters make a token in English text for the tokenizers of common open models; the gateway
uses this only when a backend reports no ``usage``, and the simulator uses it to count prompts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

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
    """What bounds and estimates a prompt's tokens: its characters, UTF-8 bytes and chat messages, the
    bytes of what a chat template renders besides the text (tool and function definitions, tool calls,
    a response format; as compact JSON), the parts that are not text (images, audio, files), and how
    many prompts a completion request batches (each gets its own answers)."""

    chars: int
    utf8_bytes: int
    messages: int
    structure_bytes: int = 0
    media_parts: int = 0
    prompts: int = 1

    @property
    def estimated_tokens(self) -> int:
        return -(-self.chars // CHARS_PER_TOKEN)


def prompt_size(body: dict[str, Any]) -> PromptSize:
    text = prompt_text(body)
    messages = body.get("messages")
    count = len(messages) if isinstance(messages, list) else 1
    structure = [body[name] for name in _STRUCTURE_FIELDS if body.get(name) is not None]
    media = 0
    if isinstance(messages, list):
        for message in messages:
            if not isinstance(message, dict):
                continue
            structure += [message[name] for name in _MESSAGE_STRUCTURE if message.get(name) is not None]
            content = message.get("content")
            if isinstance(content, list):
                media += sum(1 for part in content if isinstance(part, dict) and not _is_text(part))
    structure_bytes = _json_bytes(structure) if structure else 0
    return PromptSize(
        len(text), len(text.encode("utf-8")), count, structure_bytes, media, _batched(body.get("prompt"))
    )


def _batched(prompt: Any) -> int:
    """How many prompts a completion's ``prompt`` holds: a list of strings or of token-id lists is a
    batch, answered prompt by prompt; a string or one list of token ids is one prompt."""
    if isinstance(prompt, list) and prompt and not isinstance(prompt[0], int):
        return len(prompt)
    return 1


def _json_bytes(value: Any) -> int:
    """The size of ``value`` as compact JSON. orjson refuses to encode more than 254 levels of nesting,
    which a decoded body may have (orjson decodes up to 1024): those are measured by a walk instead,
    counting what compact JSON would hold apart from escapes."""
    try:
        return len(orjson.dumps(value))
    except TypeError:
        pass
    size = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            size += len(item.encode("utf-8")) + 2
        elif isinstance(item, dict):
            size += max(2, 1 + 2 * len(item))  # braces, colons and commas
            for key, member in item.items():
                size += len(str(key).encode("utf-8")) + 2
                stack.append(member)
        elif isinstance(item, list):
            size += max(2, 1 + len(item))  # brackets and commas
            stack.extend(item)
        else:
            size += len(orjson.dumps(item))
    return size


# What a chat template renders into the prompt besides the messages' text.
_STRUCTURE_FIELDS = ("tools", "functions", "tool_choice", "function_call", "response_format")
_MESSAGE_STRUCTURE = ("tool_calls", "function_call", "name", "tool_call_id")


def _is_text(part: dict[str, Any]) -> bool:
    return isinstance(part.get("text"), str) and part.get("type", "text") == "text"
