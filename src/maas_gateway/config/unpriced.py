"""Models that cost nothing against a money budget because they have no price: said out loud.

A request is priced at its model's price version (docs/limits.md); a model without any costs 0, so a
``unit: cost`` limit never holds its requests back. That is right for a free model and an accident for
one whose price was forgotten, so ``maas config validate`` and the gateway's start and reloads name such
models in a warning rather than letting a budget be spent on them unseen.
"""

from __future__ import annotations

from collections.abc import Iterator

from maas_gateway.config.schema import GatewayConfig, LimitConfig

__all__ = ["models_free_under_cost_limits", "unpriced_warning"]


def _limits(config: GatewayConfig) -> Iterator[LimitConfig]:
    for tier in config.tiers.values():
        yield from tier.limits
    for team in config.teams.values():
        yield from team.limits
    for key in config.api_keys:
        yield from key.limits
    for user in config.users.values():
        yield from user.limits or ()


def models_free_under_cost_limits(config: GatewayConfig) -> list[str]:
    """The models without any price that some money limit applies to, by name."""
    money = [limit for limit in _limits(config) if limit.unit == "cost"]
    return [
        model.name
        for model in config.models
        if not model.price_versions and any(limit.model in (None, model.name) for limit in money)
    ]


def unpriced_warning(config: GatewayConfig) -> str | None:
    """The warning to show for ``config``, or ``None`` when every model under a money limit has a price."""
    free = models_free_under_cost_limits(config)
    if not free:
        return None
    names = ", ".join(f"'{name}'" for name in free)
    return (
        f"The models {names} have no prices, so their requests cost nothing against `unit: cost` limits; "
        "give them `prices` unless they are meant to be free."
    )
