"""A model as the router sees it: plain values read once from the configuration.

The router and the pipeline never see the YAML schema classes, so they can be built and tested from
literals, and a reload swaps in new routes without touching the old ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from maas_gateway.pricing import PriceSchedule, PriceVersion

__all__ = ["ModelRoute"]


@dataclass(frozen=True, slots=True)
class ModelRoute:
    name: str
    backends: tuple[str, ...]  # base URLs without a trailing slash; credentials, if any, stay in them
    upstream_model: str = ""  # the name the backend serves; empty means ``name``
    hosts: tuple[str, ...] = ()
    path_prefix: str | None = None
    tiers: frozenset[str] | None = None  # None: every tier may use the model
    owned_by: str = "maas-gateway"
    token_multiplier: float = 1.0
    fallbacks: tuple[str, ...] = ()  # models that answer, in order, when none of this one's backends can
    affinity_chars: int | None = None  # prefix affinity: how much of the prompt's start is its key
    extra_paths: frozenset[str] = frozenset()  # further backend paths the operator allows
    max_model_len: int | None = None  # shown in GET /v1/models
    prices: PriceSchedule | None = None  # None: the model is free (cost limits never count it)

    def __post_init__(self) -> None:
        if not self.backends:
            raise ValueError(f"The model '{self.name}' needs at least one backend.")
        if not self.upstream_model:
            object.__setattr__(self, "upstream_model", self.name)

    def price_at(self, moment: float) -> PriceVersion | None:
        """The price version a request arriving at ``moment`` is charged at."""
        return self.prices.at(moment) if self.prices is not None else None

    def open_to(self, tier: str) -> bool:
        return self.tiers is None or tier in self.tiers
