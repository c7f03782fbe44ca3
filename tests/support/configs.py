"""Gateway configurations for tests, derived from the built-in demo so tests exercise the product's own."""

from __future__ import annotations

import copy
from typing import Any

import yaml

from maas_gateway.config import demo_config_text

__all__ = ["demo_dict", "extra_keys"]


def demo_dict(backend: str, *, limits: bool = True) -> dict[str, Any]:
    """The demo configuration with every model pointed at ``backend``."""
    data: dict[str, Any] = copy.deepcopy(yaml.safe_load(demo_config_text()))
    for model in data["models"]:
        model["backends"] = [backend]
    data["limits"]["enabled"] = limits
    return data


def extra_keys(data: dict[str, Any], tier: str, count: int, prefix: str) -> list[str]:
    """Add ``count`` users of ``tier`` with keys ``{prefix}{i}_key``; return the keys."""
    keys = [f"{prefix}{i}_key" for i in range(count)]
    for i, key in enumerate(keys):
        data["api_keys"].append({"user": f"{prefix}{i}", "tier": tier, "key": key})
    return keys
