"""Which limits apply to a request, and the counter each one uses.

Windows are fixed and aligned to the Unix epoch (a ``1d`` window is a UTC day, a ``1m`` window starts on
the minute), so every replica agrees on them without talking to each other. See docs/limits.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from maas_gateway.config.durations import format_duration
from maas_gateway.config.schema import LimitUnit
from maas_gateway.errors import PermissionDeniedError

__all__ = ["CounterRef", "LimitRule", "RuleBook", "TierPolicy"]


@dataclass(frozen=True, slots=True)
class LimitRule:
    limit: int
    unit: LimitUnit
    window: float
    model: str | None = None
    per_model: bool = False
    _key_part: str = field(default="", init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # The constant middle of every counter key of this rule, built once rather than per request.
        object.__setattr__(self, "_key_part", f"\x1f{self.unit}\x1f{self.window:g}\x1f")

    @property
    def counts_requests(self) -> bool:
        return self.unit == "requests"

    def applies_to(self, model: str) -> bool:
        return self.model is None or self.model == model

    def describe(self) -> str:
        unit = self.unit.replace("_", " ")
        scope = f" on model '{self.model}'" if self.model else (" per model" if self.per_model else "")
        return f"{self.limit} {unit} per {format_duration(self.window)}{scope}"

    def window_index(self, now: float) -> int:
        return int(now // self.window)

    def counter(self, user: str, model: str, now: float) -> CounterRef:
        index = int(now // self.window)
        scope = self.model or (model if self.per_model else "*")
        key = f"{user}{self._key_part}{scope}\x1f{index}"
        return CounterRef(self, key, index, (index + 1) * self.window - now)


@dataclass(slots=True)  # per request: a frozen dataclass costs 4x as much to build
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
    """Each tier's policy, and per-user policies that replace a tier's; immutable, rebuilt on reload.

    ``users`` maps a user to the policy that applies to them in each tier (a user's override keeps the
    tier's reserve settings but brings its own limits).
    """

    def __init__(
        self,
        tiers: Mapping[str, TierPolicy],
        users: Mapping[str, Mapping[str, TierPolicy]] | None = None,
    ) -> None:
        self._tiers = dict(tiers)
        self._users = {user: dict(policies) for user, policies in (users or {}).items()}

    @property
    def tiers(self) -> frozenset[str]:
        return frozenset(self._tiers)

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
