"""What a request costs in tokens, split into input and output, after the model's multiplier, and in money
(micro-units of the configured currency, at the model's price version in effect; no multiplier: the price
is the model's own)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from maas_gateway.config.schema import LimitUnit
from maas_gateway.pricing import PriceVersion

__all__ = ["TokenCharge"]


@dataclass(slots=True)  # per request: a frozen dataclass costs 4x as much to build
class TokenCharge:
    """Tokens to charge, already multiplied by the model's multiplier."""

    prompt: int
    completion: int
    cost: int = 0  # micro-units of the currency (limits/../pricing/money.py)

    @property
    def total(self) -> int:
        return self.prompt + self.completion

    @classmethod
    def of(
        cls,
        prompt_tokens: int,
        completion_tokens: int,
        multiplier: float,
        price: PriceVersion | None = None,
        cached_tokens: int = 0,
    ) -> TokenCharge:
        # Round the whole up once, then split, so prompt + completion == ceil(total * multiplier).
        total = math.ceil((prompt_tokens + completion_tokens) * multiplier - 1e-9)
        prompt = min(total, math.ceil(prompt_tokens * multiplier - 1e-9))
        cost = price.micros(prompt_tokens, completion_tokens, cached_tokens) if price is not None else 0
        return cls(prompt, total - prompt, cost)

    def in_unit(self, unit: LimitUnit) -> int:
        """What this charge counts against a limit of ``unit`` (nothing for a request limit)."""
        if unit == "prompt_tokens":
            return self.prompt
        if unit == "completion_tokens":
            return self.completion
        if unit == "requests":
            return 0
        if unit == "cost":
            return self.cost
        return self.total
