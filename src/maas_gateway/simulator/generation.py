"""What the simulator says: completion tokens by mode, prompt token counts, embedding vectors."""

from __future__ import annotations

import base64
import hashlib
import math
import struct

from maas_gateway.simulator.engine import FinishReason
from maas_gateway.simulator.settings import SimulatorSettings
from maas_gateway.tokens import estimate_tokens

__all__ = ["completion_tokens", "embedding", "prompt_tokens"]

# A short prompt costs 30 tokens in all, as with the origin system's simulator: a prompt counts at least
# MIN_PROMPT_TOKENS (the chat template alone costs about that many) and the default answer has
# FIXED_COMPLETION_TOKENS.
MIN_PROMPT_TOKENS = 10
FIXED_COMPLETION_TOKENS = 20
RANDOM_DEFAULT_MAX_TOKENS = 100
_ANSWER = (
    "This is a simulated response from the maas-gateway model simulator, which answers without a GPU "
    "so that every part of the service can be exercised end to end."
)
_WORDS = _ANSWER.split()


def prompt_tokens(text: str) -> int:
    return max(MIN_PROMPT_TOKENS, estimate_tokens(text))


def completion_tokens(
    settings: SimulatorSettings, last_user_text: str, max_tokens: int | None, room: int | None = None
) -> tuple[list[str], FinishReason]:
    """The completion as a list of tokens (each ends in a space but the last) and its finish reason.

    ``room`` is what the context leaves after the prompt: like vLLM, a completion without ``max_tokens``
    stops for "length" where the context ends.
    """
    if settings.mode == "echo":
        words = last_user_text.split() or ["(empty)"]
    elif settings.mode == "random":
        upper = max_tokens if max_tokens is not None else RANDOM_DEFAULT_MAX_TOKENS
        count = settings.rng.randint(1, max(1, upper))
        words = [_WORDS[i % len(_WORDS)] for i in range(count)]
    else:
        count = max_tokens if max_tokens is not None else FIXED_COMPLETION_TOKENS
        words = [_WORDS[i % len(_WORDS)] for i in range(count)]
    finish: FinishReason = "stop"
    if max_tokens is not None and len(words) >= max_tokens:
        words = words[:max_tokens]
        finish = "length"
    if room is not None and len(words) > room:
        words = words[: max(1, room)]
        finish = "length"
    tokens = [word + " " for word in words[:-1]] + words[-1:]
    return tokens, finish


def embedding(text: str, dimensions: int, encoding: str) -> list[float] | str:
    """A deterministic unit vector for ``text``: the same text always gets the same vector."""
    raw = hashlib.shake_256(text.encode("utf-8")).digest(dimensions * 2)
    values = [v / 32768.0 for v in struct.unpack(f"<{dimensions}h", raw)]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    vector = [v / norm for v in values]
    if encoding == "base64":
        return base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode("ascii")
    return vector
