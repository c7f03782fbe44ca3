"""From the configuration's schema classes to the plain values the policy units take.

This is the one place that reads ``ModelConfig``, ``TierConfig`` and friends for the request path; the
router, the rule book, the user policy and the observers get tuples, numbers and names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from maas_gateway.auth import KeyRecord
from maas_gateway.auth.keys import key_id_for
from maas_gateway.auth.user_policy import UserPolicy
from maas_gateway.balancing import (
    BackendSpec,
    HealthPolicy,
    PickerSpec,
    PollSpec,
    PoolSpec,
    RetrySpec,
    RoomSpec,
)
from maas_gateway.capacity import CapacityRules, ModelCaps, QueueSettings
from maas_gateway.config.schema import (
    APIKeyConfig,
    GatewayConfig,
    LimitConfig,
    ModelConfig,
    TeamConfig,
    TierConfig,
    UserConfig,
)
from maas_gateway.limits import LimitRule, RuleBook, TierPolicy
from maas_gateway.limits.rules import LimitScope
from maas_gateway.pricing import PriceSchedule, PriceVersion, to_micros
from maas_gateway.routing import ModelRoute

__all__ = [
    "capacity_rules",
    "key_records",
    "model_prices",
    "model_route",
    "pool_spec",
    "price_schedule",
    "rule_book",
    "user_policy",
]


def model_route(model: ModelConfig) -> ModelRoute:
    return ModelRoute(
        name=model.name,
        backends=tuple(model.backend_urls),
        upstream_model=model.upstream_model,
        hosts=tuple(model.hosts),
        path_prefix=model.path_prefix,
        tiers=frozenset(model.tiers) if model.tiers is not None else None,
        owned_by=model.owned_by,
        token_multiplier=model.token_multiplier,
        fallbacks=tuple(model.fallbacks),
        affinity_chars=model.prefix_affinity.prefix_chars if model.prefix_affinity else None,
        extra_paths=frozenset(model.extra_paths),
        max_model_len=model.max_model_len,
        prices=price_schedule(model),
    )


def pool_spec(model: ModelConfig, config: GatewayConfig) -> PoolSpec:
    """How ``model``'s backends are balanced, checked and retried: its own settings, else the file's."""
    checks = model.health_checks or config.health_checks
    outliers = model.outlier_detection or config.outlier_detection
    queue = config.queue_aware
    retry = config.retry_budget
    caps = model.capacity
    queue_aware = model.balancing == "queue-aware"
    return PoolSpec(
        backends=tuple(
            BackendSpec(str(backend.url).rstrip("/"), backend.weight, backend.max_in_flight)
            for backend in model.backends
        ),
        picker=PickerSpec(
            policy=model.balancing,
            affinity_margin=model.prefix_affinity.margin if model.prefix_affinity else None,
            stale_after=queue.stale_after,
            waiting_cost=queue.waiting_cost,
            kv_cost=queue.kv_cost,
        ),
        health=HealthPolicy(
            healthy_threshold=checks.healthy_threshold,
            unhealthy_threshold=checks.unhealthy_threshold,
            consecutive_failures=outliers.consecutive_failures,
            base_ejection=outliers.base_ejection,
            max_ejection=outliers.max_ejection,
            recovery_successes=outliers.recovery_successes,
        ),
        health_checks=PollSpec(checks.interval, checks.timeout) if checks.enabled else None,
        load_scrape=PollSpec(queue.scrape_interval, queue.scrape_timeout) if queue_aware else None,
        retry=RetrySpec(retry.ratio, retry.min_retries, retry.window),
        # Requests wait for a backend below its cap as they wait in the model's capacity line.
        room=RoomSpec(
            config.capacity.max_queue if caps.max_queue is None else caps.max_queue,
            config.capacity.queue_timeout if caps.queue_timeout is None else caps.queue_timeout,
        ),
    )


def price_schedule(model: ModelConfig) -> PriceSchedule | None:
    """The model's price versions (``pricing`` converted to one from the epoch); ``None``: free."""
    versions = model.price_versions
    if not versions:
        return None
    return PriceSchedule(
        PriceVersion(
            version.starts_at,
            version.input_per_million,
            version.output_per_million,
            version.input_per_million
            if version.cached_input_per_million is None
            else version.cached_input_per_million,
        )
        for version in versions
    )


def model_prices(config: GatewayConfig) -> dict[str, PriceSchedule]:
    return {model.name: schedule for model in config.models if (schedule := price_schedule(model))}


def rule_book(
    tiers: Mapping[str, TierConfig],
    users: Mapping[str, UserConfig],
    *,
    timezone: str = "UTC",
    currency: str = "USD",
    min_clamped_tokens: int = 16,
    media_part_tokens: int = 2048,
    teams: Mapping[str, TeamConfig] | None = None,
    keys: Sequence[APIKeyConfig] | None = None,
) -> RuleBook:
    """Each tier's limits, and for users with their own limits, those limits in every tier; the teams'
    and keys' own limits; calendar windows start at midnight in ``timezone``; cost limits count
    micro-units of ``currency``."""

    def rules(limits: list[LimitConfig], scope: LimitScope | None = None) -> tuple[LimitRule, ...]:
        return tuple(
            LimitRule(
                to_micros(c.limit) if c.unit == "cost" else int(c.limit),
                c.unit,
                c.window,
                c.model,
                c.per_model,
                c.algorithm,
                timezone,
                currency,
                scope or c.scope,
            )
            for c in limits
        )

    def policy(tier: TierConfig, limits: list[LimitConfig]) -> TierPolicy:
        return TierPolicy(
            rules(limits),
            tier.reserve,
            tier.reserve_default_max_tokens,
            min_clamped_tokens,
            media_part_tokens,
        )

    policies = {name: policy(tier, tier.limits) for name, tier in tiers.items()}
    overrides = {
        user: {name: policy(tier, override.limits) for name, tier in tiers.items()}
        for user, override in users.items()
        if override.limits is not None
    }
    team_rules = {name: rules(team.limits, "team") for name, team in (teams or {}).items() if team.limits}
    key_rules = {key_id_for(key.digest): rules(key.limits, "key") for key in (keys or []) if key.limits}
    return RuleBook(policies, overrides, team_rules, key_rules)


def capacity_rules(config: GatewayConfig) -> CapacityRules:
    """The models' caps, the tiers' and users' concurrency, and the order tiers are served in."""
    settings = config.capacity
    models = {}
    for model in config.models:
        caps = model.capacity
        queue = None
        if caps.max_queue is not None or caps.queue_timeout is not None:
            queue = QueueSettings(
                settings.max_queue if caps.max_queue is None else caps.max_queue,
                settings.queue_timeout if caps.queue_timeout is None else caps.queue_timeout,
            )
        models[model.name] = ModelCaps(caps.max_in_flight, caps.tokens_per_minute, queue)
    return CapacityRules(
        models=models,
        tiers=list(config.tiers),
        tier_order=settings.tier_order,
        tier_concurrency={name: t.max_concurrent for name, t in config.tiers.items() if t.max_concurrent},
        tier_shares={name: t.capacity_share for name, t in config.tiers.items() if t.capacity_share},
        user_concurrency={name: u.max_concurrent for name, u in config.users.items() if u.max_concurrent},
        queue=QueueSettings(settings.max_queue, settings.queue_timeout),
        lease_ttl=settings.lease_ttl,
        poll_interval=settings.poll_interval,
    )


def key_records(config: GatewayConfig) -> list[KeyRecord]:
    records = []
    for key in config.api_keys:
        models = frozenset(key.models) if key.models is not None else None
        # The public id is computed once here rather than on every request.
        records.append(
            KeyRecord(key.digest, key.user, key.tier, key.name, models, key_id_for(key.digest), team=key.team)
        )
    return records


def user_policy(config: GatewayConfig) -> UserPolicy:
    configured_users = {key.user for key in config.api_keys} | set(config.users)
    configured = {user: tier for user in configured_users if (tier := config.configured_tier(user))}
    overrides = {user: o.tier for user, o in config.users.items() if o.tier is not None}
    revalidation = {
        issuer.user_namespace: issuer.owner_revalidation
        for issuer in config.oidc.issuers
        if issuer.owner_revalidation is not None
    }
    return UserPolicy(configured, overrides, revalidation)
