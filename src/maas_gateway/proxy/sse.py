"""Following an SSE stream from a backend: splitting events, finding usage, counting output.

The gateway forwards each event as soon as it is complete. It reads the JSON of each event to learn
the usage and, in case the client leaves early, how much text was already generated. Where the usage
is depends on the API (``StreamEvents``): OpenAI's chunks carry it in the final chunk when
``stream_options.include_usage`` is on; the Responses API in its ``response.completed`` event; Anthropic's
Messages in ``message_start`` (input) and each ``message_delta`` (output, counted so far).
"""

from __future__ import annotations

from typing import Any

import orjson

from maas_gateway.proxy.endpoints import StreamEvents
from maas_gateway.proxy.exchange import Usage
from maas_gateway.proxy.usage_readers import usage_in_words

__all__ = ["SSEFollower"]

_TEXT_DELTAS = frozenset({"response.output_text.delta", "response.reasoning_text.delta"})


class SSEFollower:
    def __init__(self, *, client_wants_usage: bool, events: StreamEvents | None = None) -> None:
        self._client_wants_usage = client_wants_usage
        # None and OPENAI are the same: chat's events are read inline, without a call per event.
        self._openai = events is None or events is StreamEvents.OPENAI
        self._buffer = b""
        self.usage: dict[str, Any] | None = None  # OpenAI's usage object, as the backend sent it
        self._usage: Usage | None = None  # the other APIs' usage, read already
        self._input_tokens: int | None = None  # Anthropic's, from `message_start`
        self.response_id: str | None = None  # the Responses API's `response.id`
        self._ended = False  # the typed stream's final usage came (not cut off before it)
        self.content_chunks = 0
        self.content_chars = 0

    def final_usage(self) -> Usage | None:
        """What the stream said it used, once it has ended; None when it said nothing usable."""
        if self._openai:
            return Usage.from_backend(self.usage)
        if self._ended or self._input_tokens is None:
            return self._usage
        # Cut off after `message_start` (the client left): its input, and the output counted so far.
        generated = max(self.content_chunks, -(-self.content_chars // 4))
        return Usage(self._input_tokens, generated, estimated=True)

    def feed(self, chunk: bytes) -> list[bytes]:
        """Take raw bytes from the backend; return the complete events to forward, in order."""
        if b"\r" in chunk:
            chunk = chunk.replace(b"\r\n", b"\n")
        self._buffer += chunk
        if b"\n\n" not in self._buffer:
            return []
        *events, self._buffer = self._buffer.split(b"\n\n")
        out: list[bytes] = []
        for event in events:
            if event and self._inspect(event):
                out.append(event + b"\n\n")
        return out

    def flush(self) -> list[bytes]:
        """Whatever is left when the backend closes the stream (an event without its blank line)."""
        rest, self._buffer = self._buffer, b""
        if rest.strip() and self._inspect(rest):
            return [rest + b"\n\n"]
        return []

    def _inspect(self, event: bytes) -> bool:
        """Learn from one event; return whether the client should see it."""
        data = b"".join(line[5:].lstrip(b" ") for line in event.split(b"\n") if line.startswith(b"data:"))
        if not data or data == b"[DONE]":
            return True
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            return True
        if not isinstance(payload, dict):
            return True
        if not self._openai:
            self._typed(payload)
            return True
        choices = payload.get("choices")
        if isinstance(choices, list):
            for choice in choices:
                self._count(choice)
        usage = payload.get("usage")
        if isinstance(usage, dict):
            self.usage = usage
            if not self._client_wants_usage and not choices:
                return False  # the usage-only chunk the gateway asked for on its own account
        return True

    def _count(self, choice: Any) -> None:
        if not isinstance(choice, dict):
            return
        delta = choice.get("delta")
        text = delta.get("content") if isinstance(delta, dict) else choice.get("text")
        if isinstance(text, str) and text:
            self.content_chunks += 1
            self.content_chars += len(text)

    def _typed(self, payload: dict[str, Any]) -> None:
        """An event of the Responses or Messages API, told apart by its ``type``."""
        kind = payload.get("type")
        if kind in _TEXT_DELTAS:
            self._text(payload.get("delta"))
        elif kind == "content_block_delta":
            delta = payload.get("delta")
            if isinstance(delta, dict):
                self._text(delta.get("text"))
        elif kind in ("response.created", "response.completed", "response.incomplete"):
            response = payload.get("response")
            if isinstance(response, dict):
                if isinstance(response.get("id"), str):
                    self.response_id = response["id"]
                if kind != "response.created":
                    self._usage = usage_in_words(response.get("usage")) or self._usage
                    self._ended = True
        elif kind == "message_start":
            message = payload.get("message")
            usage = message.get("usage") if isinstance(message, dict) else None
            read = usage_in_words(usage)
            if read is not None:
                self._input_tokens = read.prompt_tokens
                self._usage = read
        elif kind == "message_delta":
            usage = payload.get("usage")
            if isinstance(usage, dict):
                # The counts so far; `input_tokens` is given again by some servers, else it stands.
                merged = {"input_tokens": self._input_tokens, **usage}
                self._usage = usage_in_words(merged) or self._usage
                self._ended = True

    def _text(self, text: Any) -> None:
        if isinstance(text, str) and text:
            self.content_chunks += 1
            self.content_chars += len(text)
