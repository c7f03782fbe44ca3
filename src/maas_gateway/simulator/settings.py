"""What a simulator is told when it starts: its models, its speed, its capacity and how it fails.

Each field is a `maas sim` option (docs/simulator.md). The defaults are an instant server without limits:
what the gateway's tests and benchmark expect.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Literal, get_args

__all__ = ["FAILURE_TYPES", "FailureType", "Mode", "SimulatorSettings"]

Mode = Literal["fixed", "echo", "random"]

# The injected failures, named as llm-d-inference-sim names the first three (its --failure-types).
FailureType = Literal["rate_limit", "context_length", "server_error", "hang", "cut"]
FAILURE_TYPES: tuple[FailureType, ...] = get_args(FailureType)


@dataclass(frozen=True)
class SimulatorSettings:
    models: tuple[str, ...] = ("simulator-model",)
    embedding_models: tuple[str, ...] = ("simulator-embed",)
    mode: Mode = "fixed"
    # Seconds; each request draws its first-token delay and each token its gap from a normal
    # distribution with these means and standard deviations (clipped at 0).
    time_to_first_token: float = 0.0
    time_to_first_token_std: float = 0.0
    inter_token_latency: float = 0.0
    inter_token_latency_std: float = 0.0
    failure_rate: float = 0.0
    failure_types: tuple[FailureType, ...] = ("server_error",)
    retry_after: int = 1  # seconds, in the Retry-After header of an injected rate_limit failure
    embedding_dimensions: int = 384
    max_model_len: int = 8192
    # None: no bound, every request generates at once (vLLM's --max-num-seqs bounds it).
    max_num_seqs: int | None = None
    # None: no KV-cache model; its usage stays 0 and no request waits for room in it.
    kv_cache_tokens: int | None = None
    seed: int | None = None
    rng: random.Random = field(default_factory=random.Random, compare=False)
