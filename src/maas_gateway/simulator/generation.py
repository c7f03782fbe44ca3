"""What the simulator says: completion tokens by mode, prompt token counts, embedding vectors."""

from __future__ import annotations

import base64
import hashlib
import math
import random
import struct
from dataclasses import dataclass, field
from typing import Literal

from maas_gateway.tokens import estimate_tokens

__all__ = ["Mode", "SimulatorSettings", "completion_tokens", "embedding", "prompt_tokens"]

Mode = Literal["fixed", "echo", "random"]

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


@dataclass(frozen=True)
class SimulatorSettings:
    models: tuple[str, ...] = ("simulator-model",)
    embedding_models: tuple[str, ...] = ("simulator-embed",)
    mode: Mode = "fixed"
    time_to_first_token: float = 0.0
    inter_token_latency: float = 0.0
    failure_rate: float = 0.0
    embedding_dimensions: int = 384
    max_model_len: int = 8192
    seed: int | None = None
    rng: random.Random = field(default_factory=random.Random, compare=False)


def prompt_tokens(text: str) -> int:
    return max(MIN_PROMPT_TOKENS, estimate_tokens(text))


def completion_tokens(
    settings: SimulatorSettings, last_user_text: str, max_tokens: int | None
) -> tuple[list[str], str]:
    """The completion as a list of tokens (each ends in a space but the last) and its finish reason."""
    if settings.mode == "echo":
        words = last_user_text.split() or ["(empty)"]
    elif settings.mode == "random":
        upper = max_tokens if max_tokens is not None else RANDOM_DEFAULT_MAX_TOKENS
        count = settings.rng.randint(1, max(1, upper))
        words = [_WORDS[i % len(_WORDS)] for i in range(count)]
    else:
        count = max_tokens if max_tokens is not None else FIXED_COMPLETION_TOKENS
        words = [_WORDS[i % len(_WORDS)] for i in range(count)]
    finish = "stop"
    if max_tokens is not None and len(words) >= max_tokens:
        words = words[:max_tokens]
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
