"""What the budgets page reads (portal/budgets.py) against a real in-memory limiter and alert outbox: the
very counters the limiter admits on, each team's budget for its members only, alerts matched to their
budget and window, money with the currency's code, and resets in the limits' time zone."""

from __future__ import annotations

import asyncio
import datetime
from zoneinfo import ZoneInfo

from maas_gateway.alerts import InMemoryAlertOutbox
from maas_gateway.alerts.events import AlertEvent
from maas_gateway.limits import InMemoryLimitStorage, Limiter, LimitRule, RuleBook, TierPolicy
from maas_gateway.portal.budgets import Budget, budgets_of, fired_alerts, owned_by_team, owned_by_user
from maas_gateway.portal.money_words import amount_text, micros_text

BERLIN = "Europe/Berlin"
# 2026-03-28 12:00 in Berlin (CET, UTC+1): the month ends after the switch to summer time (UTC+2).
NOW = datetime.datetime(2026, 3, 28, 12, 0, tzinfo=ZoneInfo(BERLIN)).timestamp()


def _limiter() -> Limiter:
    own = LimitRule(limit=5, unit="requests", window=60.0, timezone=BERLIN)
    tier = LimitRule(limit=100, unit="requests", window="day", scope="tier", timezone=BERLIN)
    alpha = LimitRule(limit=4, unit="requests", window="month", scope="team", timezone=BERLIN)
    beta = LimitRule(limit=500_000, unit="cost", window="week", scope="team", timezone=BERLIN, currency="CHF")
    policy = TierPolicy(rules=(own, tier), reserve=False, reserve_default_max_tokens=64)
    book = RuleBook({"free": policy}, teams={"alpha": [alpha], "beta": [beta]})
    return Limiter(InMemoryLimitStorage(), book, clock=lambda: NOW)


def _by_owner(budgets: list[Budget]) -> dict[str, Budget]:
    return {budget.alert_owner: budget for budget in budgets}


def test_a_members_budgets_are_the_counters_the_limiter_admits_on() -> None:
    """After two calls with alpha's key, ada (in alpha) sees alpha's month at 2 of 4, her own minute at 2
    and the tier's day at 2; beta's budget is not among hers; the month resets at 1 April midnight in
    Berlin, summer time (CEST)."""

    async def scenario() -> list[Budget]:
        limiter = _limiter()
        for _ in range(2):
            await limiter.admit("ada", "free", "m", team="alpha")
        return await budgets_of(limiter, owned_by_user(limiter, "ada", "free", ["alpha"]), ["m"], NOW)

    budgets = _by_owner(asyncio.run(scenario()))
    assert set(budgets) == {"ada", "tier:free", "team:alpha"}
    alpha = budgets["team:alpha"]
    assert (alpha.used, alpha.remaining, alpha.percent) == (2, 2, 50)
    assert (alpha.owner_kind, alpha.owner_name) == ("team", "alpha")
    assert alpha.resets_at == "2026-04-01 00:00 CEST (Europe/Berlin)"
    assert budgets["ada"].used == 2
    assert budgets["tier:free"].used == 2
    assert budgets["tier:free"].owner_kind == "tier"


def test_money_is_written_with_the_currency_code() -> None:
    """Micro-units and report amounts are written with the code after the amount, singular for one."""
    assert micros_text(500_000, "CHF") == "0.50 CHF"
    assert micros_text(12_345_678, "EUR") == "12.345678 EUR"
    assert micros_text(1_234_000_000, "USD") == "1,234.00 USD"
    assert amount_text(0.0125, "EUR") == "0.0125 EUR"

    async def scenario() -> list[Budget]:
        limiter = _limiter()
        return await budgets_of(limiter, owned_by_team(limiter, "beta"), ["m"], NOW)

    beta = asyncio.run(scenario())[0]
    assert beta.amount(beta.limit) == "0.50 CHF"
    assert beta.resets_at == "2026-03-30 00:00 CEST (Europe/Berlin)"  # Monday, after the switch


def _alert(user: str, limit_key: str, window_start: float, threshold: int, alert_id: str) -> AlertEvent:
    return AlertEvent(
        alert_id=alert_id,
        webhook="ops",
        user=user,
        tier="free",
        limit_key=limit_key,
        limit=4,
        unit="requests",
        window="month (Europe/Berlin)",
        window_start=int(window_start),
        window_end=int(NOW + 86400 * 4),
        threshold=threshold,
        used=2,
        created_at=NOW - 10,
    )


def test_fired_alerts_are_matched_to_their_budget_and_window_only() -> None:
    """alpha's 50 % alert of this month marks alpha's budget; last month's 80 % does not, and beta's
    alert is neither read nor shown to a member of alpha."""

    async def scenario() -> tuple[list[Budget], list[str]]:
        limiter = _limiter()
        budgets = await budgets_of(limiter, owned_by_user(limiter, "ada", "free", ["alpha"]), ["m"], NOW)
        alpha = _by_owner(budgets)["team:alpha"]
        outbox = InMemoryAlertOutbox()
        await outbox.enqueue(_alert("team:alpha", alpha.limit_key, alpha.window_start, 50, "now"))
        await outbox.enqueue(
            _alert("team:alpha", alpha.limit_key, alpha.window_start - 86400 * 28, 80, "old")
        )
        await outbox.enqueue(_alert("team:beta", "cost/week (Europe/Berlin)/*", alpha.window_start, 90, "b"))
        shown, records = await fired_alerts(outbox, budgets, NOW)
        return shown, [record.event.alert_id for record in records]

    shown, records = asyncio.run(scenario())
    fired = {budget.alert_owner: budget.fired for budget in shown}
    assert fired == {"ada": (), "tier:free": (), "team:alpha": (50,)}
    assert records == ["now"]
