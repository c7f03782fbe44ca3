"""Which limits apply to a request, and the counter each one uses.

Fixed-length windows are aligned to the Unix epoch (a ``1d`` window is a UTC day, a ``1m`` window starts
on the minute); calendar windows (``day``, ``week``, ``month``) to local midnight in the configured time
zone (limits/windows.py). Either way every replica agrees on them without talking to each other. A
``sliding`` rule also reads the previous window's counter, weighted by how much of the current window is
still to come (limits/sliding.py). See docs/limits.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal
from zoneinfo import ZoneInfo

from maas_gateway.config.durations import format_duration
from maas_gateway.config.schema import LimitUnit
from maas_gateway.errors import PermissionDeniedError
from maas_gateway.limits.sliding import remaining_weight
from maas_gateway.limits.windows import CalendarUnit, Window, make_window
from maas_gateway.pricing import format_money

__all__ = ["Counted", "CounterRef", "LimitRule", "LimitScope", "RuleBook", "TierPolicy", "subject_of"]

# How many (user, tier, model, team, key) combinations a rule book remembers the applicable rules of; when
# full it starts over, so a flood of one-off users cannot grow it without bound.
_COUNTED_CACHE_SIZE = 4096

# Whose counter a rule keeps: each user's (the default), a team's, a key's, the whole tier's together,
# or everyone's together (with ``model``: a model-wide limit).
LimitScope = Literal["user", "team", "key", "tier", "global"]
_WHOLE = {"tier": "all users of the tier together", "global": "everyone together"}


def subject_of(
    scope: LimitScope, *, user: str, tier: str, team: str | None, key_id: str | None
) -> str | None:
    """The counter's owner for a rule of ``scope``: the user's name as before (so existing counters
    carry on), else the scope and its name, apart from any user's name (the separator is in no name).
    ``None`` when the request has no such owner (no team)."""
    if scope == "user":
        return user
    if scope == "team":
        return f"team\x1f{team}" if team else None
    if scope == "key":
        return f"key\x1f{key_id}" if key_id else None
    if scope == "tier":
        return f"tier\x1f{tier}"
    return "global\x1f"


@dataclass(frozen=True, slots=True)
class LimitRule:
    limit: int
    unit: LimitUnit
    window: float | CalendarUnit
    model: str | None = None
    per_model: bool = False
    algorithm: Literal["fixed", "sliding"] = "fixed"
    timezone: str = "UTC"
    currency: str = "USD"  # cost rules: ``limit`` is in micro-units of this currency
    scope: LimitScope = "user"
    span: Window = field(init=False, repr=False, compare=False)
    _key_part: str = field(default="", init=False, repr=False, compare=False)
    _seconds: float = field(default=0.0, init=False, repr=False, compare=False)  # 0: a calendar window
    _sliding: bool = field(default=False, init=False, repr=False, compare=False)
    # Read several times per request (admission, settling): a plain attribute rather than a property.
    counts_requests: bool = field(default=False, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        span = make_window(self.window, ZoneInfo(self.timezone))
        object.__setattr__(self, "span", span)
        # The constant middle of every counter key of this rule, built once rather than per request.
        object.__setattr__(self, "_key_part", f"\x1f{self.unit}\x1f{span.key}\x1f")
        # Read on every request: plain attributes, so the common fixed window takes no method call.
        object.__setattr__(self, "_seconds", 0.0 if isinstance(self.window, str) else self.window)
        object.__setattr__(self, "_sliding", self.algorithm == "sliding")
        object.__setattr__(self, "counts_requests", self.unit == "requests")

    def applies_to(self, model: str) -> bool:
        return self.model is None or self.model == model

    @property
    def counts_money(self) -> bool:
        return self.unit == "cost"

    def amount(self, units: int) -> str:
        """``units`` of this rule as a person reads them: ``1,034 tokens``, or ``$0.0123`` for cost."""
        if self.counts_money:
            return format_money(units, self.currency)
        return f"{units:,} {self.unit.replace('_', ' ')}"

    def describe(self) -> str:
        scope = f" on model '{self.model}'" if self.model else (" per model" if self.per_model else "")
        sliding = " (sliding)" if self.algorithm == "sliding" else ""
        whole = f" for {_WHOLE[self.scope]}" if self.scope in _WHOLE else ""
        if self.counts_money:
            return f"the {self.amount(self.limit)} budget per {self.window_name}{sliding}{scope}{whole}"
        unit = self.unit.replace("_", " ")
        return f"{self.limit} {unit} per {self.window_name}{sliding}{scope}{whole}"

    @property
    def window_name(self) -> str:
        """``1m``, ``1d``; ``month`` or ``month (Europe/Berlin)`` for calendar windows."""
        if isinstance(self.window, str):
            return self.window if self.timezone == "UTC" else f"{self.window} ({self.timezone})"
        return format_duration(self.window)

    def window_index(self, now: float) -> int:
        """The window holding ``now``: its index since the epoch, or its start for calendar windows."""
        if self._seconds:
            return int(now // self._seconds)
        return self.span.window_id(now)

    def counter(self, user: str, model: str, now: float) -> CounterRef:
        seconds = self._seconds
        if seconds:
            index = int(now // seconds)
            start, end = index * seconds, (index + 1) * seconds
        else:
            start, end = self.span.bounds(now)
            index = int(start)
        scope = self.model or (model if self.per_model else "*")
        if not self._sliding:
            return CounterRef(
                self, f"{user}{self._key_part}{scope}\x1f{index}", index, end - now, end, subject=user
            )
        stem = f"{user}{self._key_part}{scope}\x1f"
        return CounterRef(
            self,
            f"{stem}{index}",
            index,
            end - now,
            self.span.next_end(now),  # the counter is the previous window's for one more window
            f"{stem}{self.span.previous_id(now)}",
            remaining_weight(start, end, now),
            user,
        )


@dataclass(slots=True)  # per request: a frozen dataclass costs 4x as much to build
class CounterRef:
    rule: LimitRule
    key: str
    window_index: int
    reset_in: float  # seconds until this window ends
    expires_at: float  # when the counter may go: its window's end, or the next one's for sliding rules
    previous_key: str | None = None  # sliding rules: the previous window's counter
    weight: int = 0  # sliding rules: the previous window's weight, in millionths
    subject: str = ""  # whose counter: a user's name, or a scope's (``subject_of``)

    @property
    def owner(self) -> str:
        """Who the counter counts, for messages: ``the team 'research'``, ``the key 'key_ab12'``, or ''
        for a user's own counter (the message names the user already) and the tier's or everyone's."""
        kind, _, name = self.subject.partition("\x1f")
        return f"the {kind} '{name}'" if kind in ("team", "key") and name else ""


@dataclass(frozen=True, slots=True)
class TierPolicy:
    rules: tuple[LimitRule, ...]
    reserve: bool
    reserve_default_max_tokens: int
    min_clamped_tokens: int = 16
    media_part_tokens: int = 2048
    per_user_only: bool = field(default=True, init=False, compare=False)  # every rule counts per user

    def __post_init__(self) -> None:
        object.__setattr__(self, "per_user_only", all(rule.scope == "user" for rule in self.rules))


# A user's policy, and each rule a request counts in with its counter's owner (``RuleBook.counted``).
Counted = tuple[TierPolicy, tuple[tuple[LimitRule, str], ...]]


class RuleBook:
    """Each tier's policy, and per-user policies that replace a tier's; immutable, rebuilt on reload.

    ``users`` maps a user to the policy that applies to them in each tier (a user's override keeps the
    tier's reserve settings but brings its own limits). ``counted`` remembers its answers: they depend
    on this book alone, and a reload builds a new book, so a changed limit applies from the next request.
    """

    def __init__(
        self,
        tiers: Mapping[str, TierPolicy],
        users: Mapping[str, Mapping[str, TierPolicy]] | None = None,
        teams: Mapping[str, Sequence[LimitRule]] | None = None,
        keys: Mapping[str, Sequence[LimitRule]] | None = None,
    ) -> None:
        """``teams`` and ``keys`` (by key id) bring rules of their own, which hold beside the tier's."""
        self._tiers = dict(tiers)
        self._users = {user: dict(policies) for user, policies in (users or {}).items()}
        self._teams = {team: tuple(rules) for team, rules in (teams or {}).items()}
        self._keys = {key: tuple(rules) for key, rules in (keys or {}).items()}
        self._counted: dict[tuple[str, str, str, str | None, str | None], Counted] = {}

    @property
    def scoped(self) -> bool:
        """Whether any team or key has limits of its own."""
        return bool(self._teams or self._keys)

    @property
    def tiers(self) -> frozenset[str]:
        return frozenset(self._tiers)

    def team_rules(self, team: str) -> tuple[LimitRule, ...]:
        """The team's own rules (counted for the team's keys together); none for a team without limits."""
        return self._teams.get(team, ())

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

    def counted(self, user: str, tier: str, model: str, *, team: str | None, key_id: str | None) -> Counted:
        """The user's policy and the rules a request on ``model`` counts in, each with its counter's
        owner: ``applicable`` narrowed to the model, worked out once per combination (per request it cost
        as much as counting). Raises ``PermissionDeniedError`` for an unknown tier, as ``policy`` does."""
        combination = (user, tier, model, team, key_id)
        found = self._counted.get(combination)
        if found is None:
            policy = self.policy(user, tier)
            pairs = self.applicable(policy, user=user, tier=tier, team=team, key_id=key_id)
            found = (policy, tuple((rule, subject) for rule, subject in pairs if rule.applies_to(model)))
            if len(self._counted) >= _COUNTED_CACHE_SIZE:
                self._counted.clear()
            self._counted[combination] = found
        return found

    def applicable(
        self, policy: TierPolicy, *, user: str, tier: str, team: str | None, key_id: str | None
    ) -> list[tuple[LimitRule, str]]:
        """Every rule that applies to a request with the counter owner each one counts for: the
        policy's (each user's, the tier's, everyone's), the team's and the key's. All must hold."""
        found: list[tuple[LimitRule, str]] = []
        extra = (self._teams.get(team, ()) if team else ()) + (self._keys.get(key_id, ()) if key_id else ())
        for rule in (*policy.rules, *extra):
            subject = subject_of(rule.scope, user=user, tier=tier, team=team, key_id=key_id)
            if subject is not None:
                found.append((rule, subject))
        return found
