"""The prefix-affinity key of a request: the start of its system prompt, or of its first message.

Requests whose prompts start alike are sent to the same backend, whose prefix cache then likely holds
that start (docs/routing.md). The key is the system prompt's first ``chars`` characters (the first
message's when there is no system prompt; the prompt's, for completions and embeddings).
"""

from __future__ import annotations

from typing import Any

__all__ = ["affinity_key"]


def affinity_key(body: dict[str, Any] | None, chars: int) -> str | None:
    """The key, or None when the body has no text to take it from (or was decoded in another process)."""
    if body is None:
        return None
    messages = body.get("messages")
    if isinstance(messages, list) and messages:
        chosen = next(
            (m for m in messages if isinstance(m, dict) and m.get("role") in ("system", "developer")),
            messages[0],
        )
        text = _text(chosen.get("content")) if isinstance(chosen, dict) else None
    else:
        prompt = body.get("prompt", body.get("input"))
        text = _text(prompt[0] if isinstance(prompt, list) and prompt else prompt)
    return text[:chars] if text else None


def _text(content: Any) -> str | None:
    """A message's text: a string, or the text parts of a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [part.get("text") for part in content if isinstance(part, dict)]
        return "".join(text for text in parts if isinstance(text, str)) or None
    return None
