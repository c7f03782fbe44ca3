"""The capacity settings in the configuration file, and the plain rules built from them."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from maas_gateway.application.policies import capacity_rules
from maas_gateway.config import ConfigError, demo_config_text, parse_config


def _demo() -> dict[str, Any]:
    data: dict[str, Any] = copy.deepcopy(yaml.safe_load(demo_config_text()))
    return data


def test_the_tier_order_names_known_tiers_once_each() -> None:
    """An unknown tier, or one named twice, in `capacity.tier_order` is refused with the field named."""
    data = _demo()
    data["capacity"] = {"tier_order": ["enterprise", "gold"]}
    with pytest.raises(ConfigError, match=r"capacity.tier_order: unknown tier 'gold'"):
        parse_config(data)
    data["capacity"] = {"tier_order": ["free", "free"]}
    with pytest.raises(ConfigError, match=r"tier 'free' is used twice"):
        parse_config(data)


@pytest.mark.parametrize(
    ("where", "value"),
    [
        (("models", 0, "capacity", "max_in_flight"), 0),
        (("models", 0, "capacity", "tokens_per_minute"), -5),
        (("tiers", "free", "max_concurrent"), 0),
        (("tiers", "free", "capacity_share"), 1.5),
        (("tiers", "free", "capacity_share"), 0),
        (("capacity", "lease_ttl"), "500ms"),
        (("capacity", "lease_ttl"), "2h"),
        (("capacity", "poll_interval"), "2s"),
        (("capacity", "max_queue"), -1),
    ],
)
def test_out_of_range_capacity_settings_are_refused(where: tuple[Any, ...], value: Any) -> None:
    """Caps and concurrency are at least 1, a tier's share is more than none and at most all, a lease
    lives from a second to an hour, polls are at most a second apart, and a line is never shorter than
    empty."""
    data = _demo()
    node = data
    for step in where[:-1]:
        node = node.setdefault(step, {}) if isinstance(step, str) else node[step]
    node[where[-1]] = value
    with pytest.raises(ConfigError):
        parse_config(data)


def test_rules_take_model_caps_queue_overrides_and_user_overrides_of_tier_concurrency() -> None:
    """A model's own queue settings replace the gateway-wide ones; a user's `max_concurrent` replaces
    their tier's; a tier's share is whole slots, rounded down; tiers outside `tier_order` come after the
    listed ones; uncapped requests have no demand."""
    data = _demo()
    data["models"][0]["capacity"] = {"max_in_flight": 8, "tokens_per_minute": 1000, "queue_timeout": "2s"}
    data["tiers"]["free"]["max_concurrent"] = 2
    data["tiers"]["free"]["capacity_share"] = 0.3
    data["users"] = {"freeuser2": {"max_concurrent": 5}}
    data["capacity"] = {"tier_order": ["enterprise"], "max_queue": 7, "queue_timeout": "3s"}
    rules = capacity_rules(parse_config(data))
    capped = rules.demand("freeuser1", "free", "simulator-model")
    assert capped is not None
    assert (capped.model_limit, capped.tokens_per_minute, capped.user_limit, capped.tier_limit) == (
        8,
        1000,
        2,
        2,
    )
    assert (capped.queue.max_queue, capped.queue.timeout) == (7, 2.0)
    assert (capped.rank, capped.ranks) == (1, 2)
    overridden = rules.demand("freeuser2", "free", "simulator-embed")
    assert overridden is not None
    assert (overridden.model_limit, overridden.user_limit, overridden.queue.timeout) == (None, 5, 3.0)
    assert rules.demand("enterpriseuser1", "enterprise", "simulator-embed") is None
    assert not capacity_rules(parse_config(_demo())).active
