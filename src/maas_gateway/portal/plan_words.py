"""A tier's limits said in words for people comparing plans ("20 requests every 2 minutes")."""

from __future__ import annotations

from maas_gateway.config.schema import LimitConfig, TierConfig

__all__ = ["limit_in_words", "tier_facts"]

_UNITS = (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))
_CALENDAR = {"day": "calendar day", "week": "calendar week (from Monday)", "month": "calendar month"}


def _window(window: float | str) -> str:
    if isinstance(window, str):
        return f"per {_CALENDAR.get(window, window)}"
    for name, size in _UNITS:
        if window >= size and float(window / size).is_integer():
            count = int(window / size)
            return f"per {name}" if count == 1 else f"every {count} {name}s"
    return f"every {window:g} seconds"


def limit_in_words(limit: LimitConfig) -> str:
    """``20 requests every 2 minutes``, ``1,000 tokens per minute on model 'x'``."""
    unit = limit.unit.replace("_", " ")
    if limit.limit == 1:
        unit = unit.removesuffix("s")
    scope = f" on model '{limit.model}'" if limit.model else (" for each model" if limit.per_model else "")
    return f"{limit.limit:,} {unit} {_window(limit.window)}{scope}"


def tier_facts(tier: TierConfig) -> list[str]:
    """Every limit of ``tier`` in words, then its concurrency cap."""
    facts = [limit_in_words(limit) for limit in tier.limits]
    if tier.max_concurrent is not None:
        facts.append(f"at most {tier.max_concurrent} requests in progress at once")
    else:
        facts.append("no cap on requests in progress at once")
    return facts
