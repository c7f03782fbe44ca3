"""The budgets that concern someone, how much of each is used now, and which alerts fired on them.

The same path as the overview's remaining quota (``quota.py``): each rule's counter as the limiter names
it (``LimitRule.counter``), read through the storage's read-only ``peek``, so a page shows what the next
request will meet. Each budget is named as the limiter names it to the alert notifier
(``limits.readings.reading``: owner, limit key, window start), so an alert in the outbox is matched to
its budget and window exactly, and to no other.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from zoneinfo import ZoneInfo

from maas_gateway.alerts import AlertOutbox
from maas_gateway.alerts.events import AlertRecord
from maas_gateway.errors import GatewayError
from maas_gateway.limits import Limiter
from maas_gateway.limits.readings import reading
from maas_gateway.limits.rules import CounterRef, LimitRule, subject_of
from maas_gateway.portal.money_words import micros_text

__all__ = ["Budget", "Owned", "budgets_of", "fired_alerts", "owned_by_team", "owned_by_user"]

Owned = tuple[LimitRule, str, str, str]  # a rule, its counter's owner, and the user and tier it is read for
_OWNER_KINDS = {"team": "team", "key": "key", "tier": "tier", "global": "everyone"}
_ALERTS_READ = 1000  # fired alerts read at most for one page; a budget has a handful per window


@dataclass(frozen=True, slots=True)
class Budget:
    owner_kind: str  # "user", "team", "tier" or "everyone"
    owner_name: str  # the user's, team's or tier's name; "" for everyone
    alert_owner: str  # the budget's owner as alerts name it: "alice", "team:research", "tier:free", "global"
    limit_key: str  # unit, window and model scope: "cost/month/*"
    description: str  # as error messages name the limit
    unit: str
    window: str
    model: str | None
    limit: int
    used: int
    window_start: float
    window_end: float
    timezone: str
    currency: str
    fired: tuple[int, ...] = ()  # alert thresholds (percent) fired in this window

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    @property
    def percent(self) -> int:
        """How much of the limit is used, in whole percent (rounded down; 100 when used up)."""
        return min(100, self.used * 100 // self.limit) if self.limit > 0 else 100

    def amount(self, units: int) -> str:
        """``units`` of this budget as a person reads them: ``12.50 EUR``, ``1,034 tokens``."""
        if self.unit == "cost":
            return micros_text(units, self.currency)
        unit = self.unit.replace("_", " ")
        return f"{units:,} {unit.removesuffix('s') if units == 1 else unit}"

    @property
    def resets_at(self) -> str:
        """When the window ends, in the limits' time zone: ``2026-12-01 00:00 CET (Europe/Berlin)``."""
        moment = datetime.datetime.fromtimestamp(self.window_end, tz=ZoneInfo(self.timezone))
        text = moment.strftime("%Y-%m-%d %H:%M %Z")
        return text if self.timezone == "UTC" else f"{text} ({self.timezone})"


def owned_by_user(limiter: Limiter, user: str, tier: str | None, teams: Iterable[str]) -> list[Owned]:
    """Every rule that concerns ``user``: their own, their tier's and everyone's (as in ``tier``), and
    each of ``teams``' own. A key's own rules are the key's, not listed here."""
    owned: list[Owned] = []
    if tier is not None:
        try:
            policy = limiter.rules.policy(user, tier)
        except GatewayError:
            policy = None  # a tier without a policy: no request is admitted, nothing is counted
        if policy is not None:
            applicable = limiter.rules.applicable(policy, user=user, tier=tier, team=None, key_id=None)
            owned += [(rule, subject, user, tier) for rule, subject in applicable]
    for team in teams:
        owned += owned_by_team(limiter, team)
    return owned


def owned_by_team(limiter: Limiter, team: str) -> list[Owned]:
    """The team's own rules, counted for the team's keys together."""
    found: list[Owned] = []
    for rule in limiter.rules.team_rules(team):
        subject = subject_of(rule.scope, user="", tier="", team=team, key_id=None)
        if subject is not None:
            found.append((rule, subject, "", ""))
    return found


async def budgets_of(
    limiter: Limiter, owned: Sequence[Owned], models: Sequence[str], now: float
) -> list[Budget]:
    """Each owned rule's budget in the window holding ``now`` (per-model rules once for each of
    ``models``); a counter listed twice (a tier's rule read for two users) is shown once."""
    counters: dict[str, tuple[CounterRef, str, str, str]] = {}
    for rule, subject, user, tier in owned:
        models_read = models if rule.per_model else [rule.model or "*"]
        for model in models_read:
            counter = rule.counter(subject, model, now)
            counters.setdefault(counter.key, (counter, user, tier, model))
    listed = list(counters.values())
    values = await limiter.storage.peek([counter.key for counter, *_ in listed], now)
    budgets = []
    for (counter, user, tier, model), used in zip(listed, values, strict=True):
        rule = counter.rule
        named = reading(user, tier, model, counter, used)
        kind, separator, name = counter.subject.partition("\x1f")
        budgets.append(
            Budget(
                owner_kind=_OWNER_KINDS.get(kind, kind) if separator else "user",
                owner_name=name if separator else counter.subject,
                alert_owner=named.user,
                limit_key=named.limit_key,
                description=rule.describe(),
                unit=rule.unit,
                window=named.window,
                model=rule.model or (model if rule.per_model else None),
                limit=rule.limit,
                used=used,
                window_start=named.window_start,
                window_end=named.window_end,
                timezone=rule.timezone,
                currency=rule.currency,
            )
        )
    return budgets


async def fired_alerts(
    outbox: AlertOutbox | None, budgets: Sequence[Budget], now: float
) -> tuple[list[Budget], list[AlertRecord]]:
    """``budgets`` with the thresholds fired in their current window, and those alerts (newest first):
    only alerts of these budgets' owners are read, so nobody sees an alert on someone else's budget."""
    if outbox is None or not budgets:
        return list(budgets), []
    owners = sorted({budget.alert_owner for budget in budgets})
    records = await outbox.listed(owners=owners, ending_after=now, limit=_ALERTS_READ)
    current = {(b.alert_owner, b.limit_key, int(b.window_start)) for b in budgets}
    records = [
        record
        for record in records
        if (record.event.user, record.event.limit_key, record.event.window_start) in current
    ]
    fired: dict[tuple[str, str, int], set[int]] = {}
    for record in records:
        event = record.event
        fired.setdefault((event.user, event.limit_key, event.window_start), set()).add(event.threshold)
    shown = [
        replace(b, fired=tuple(sorted(fired.get((b.alert_owner, b.limit_key, int(b.window_start)), ()))))
        for b in budgets
    ]
    return shown, records
