"""A model's price for chargeback, as plain numbers read once from the configuration."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ModelPrice"]


@dataclass(frozen=True, slots=True)
class ModelPrice:
    prompt_per_1k: float = 0.0
    completion_per_1k: float = 0.0

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.prompt_per_1k + completion_tokens * self.completion_per_1k) / 1000
