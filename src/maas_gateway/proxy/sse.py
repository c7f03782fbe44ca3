"""Following an SSE stream from a backend: splitting events, finding usage, counting output.

The gateway forwards each event as soon as it is complete. It reads the JSON of each event to learn
the usage (sent in the final chunk when ``stream_options.include_usage`` is on) and, in case the client
leaves early, how much text was already generated.
"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["SSEFollower"]


class SSEFollower:
    def __init__(self, *, client_wants_usage: bool) -> None:
        self._client_wants_usage = client_wants_usage
        self._buffer = b""
        self.usage: dict[str, Any] | None = None
        self.content_chunks = 0
        self.content_chars = 0

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
