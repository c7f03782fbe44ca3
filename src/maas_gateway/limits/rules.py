"""Which limits apply to a request, and the counter each one uses.

Windows are fixed and aligned to the Unix epoch (a ``1d`` window is a UTC day, a ``1m`` window starts on
the minute), so every replica agrees on them without talking to each other. See docs/limits.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from maas_gateway.config.durations import format_duration
from maas_gateway.config.schema import LimitConfig, LimitUnit, TierConfig, UserConfig
from maas_gateway.errors import PermissionDeniedError

__all__ = ["CounterRef", "LimitRule", "RuleBook", "TierPolicy"]


@dataclass(frozen=True, slots=True)
class LimitRule:
    limit: int
    unit: LimitUnit
    window: float
    model: str | None = None
    per_model: bool = False

    @classmethod
    def from_config(cls, config: LimitConfig) -> LimitRule:
        return cls(config.limit, config.unit, config.window, config.model, config.per_model)

    @property
    def counts_requests(self) -> bool:
        return self.unit == "requests"

    def applies_to(self, model: str) -> bool:
        return self.model is None or self.model == model

    def describe(self) -> str:
        unit = self.unit.replace("_", " ")
        scope = f" on model '{self.model}'" if self.model else (" per model" if self.per_model else "")
        return f"{self.limit} {unit} per {format_duration(self.window)}{scope}"

    def counter(self, user: str, model: str, now: float) -> CounterRef:
        index = math.floor(now / self.window)
        scope = self.model or (model if self.per_model else "*")
        key = f"{user}\x1f{self.unit}\x1f{self.window:g}\x1f{scope}\x1f{index}"
        reset = (index + 1) * self.window - now
        return CounterRef(self, key, index, reset)


@dataclass(frozen=True, slots=True)
class CounterRef:
    rule: LimitRule
    key: str
    window_index: int
    reset_in: float  # seconds until this window ends


@dataclass(frozen=True, slots=True)
class TierPolicy:
    rules: tuple[LimitRule, ...]
    reserve: bool
    reserve_default_max_tokens: int


class RuleBook:
    """Tiers and per-user overrides as rule lists; swapped whole on reload."""

    def __init__(self, tiers: Mapping[str, TierConfig], users: Mapping[str, UserConfig]) -> None:
        self._tiers = {name: _policy(tier, tier.limits) for name, tier in tiers.items()}
        self._users: dict[str, dict[str, TierPolicy]] = {}
        for user, override in users.items():
            if override.limits is not None:
                self._users[user] = {name: _policy(tier, override.limits) for name, tier in tiers.items()}

    def policy(self, user: str, tier: str) -> TierPolicy:
        overrides = self._users.get(user)
        if overrides is not None and tier in overrides:
            return overrides[tier]
        policy = self._tiers.get(tier)
        if policy is None:
            raise PermissionDeniedError(
                f"The tier '{tier}' is not configured, so no request can be admitted for it.",
                code="unknown_tier",
            )
        return policy


def _policy(tier: TierConfig, limits: list[LimitConfig]) -> TierPolicy:
    return TierPolicy(
        tuple(LimitRule.from_config(limit) for limit in limits),
        tier.reserve,
        tier.reserve_default_max_tokens,
    )
