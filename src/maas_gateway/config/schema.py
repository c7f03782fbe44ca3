"""The declarative configuration file, validated with pydantic.

One ``GatewayConfig`` describes the server, the models and their backends, the tiers with their limits,
the API keys and per-user overrides. Cross-references (a key's tier, a model's tiers, a limit's model) are
checked here so a bad file fails at load time with a message naming the field.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, date, datetime
from typing import Literal

from pydantic import (
    AwareDatetime,
    Field,
    SecretStr,
    field_serializer,
    field_validator,
    model_validator,
)

from maas_gateway.config.alerts_settings import AlertsSettings
from maas_gateway.config.balancing_settings import (
    BackendConfig,
    BalancingPolicy,
    HealthCheckSettings,
    OutlierDetectionSettings,
    PrefixAffinitySettings,
    QueueAwareSettings,
    RetryBudgetSettings,
)
from maas_gateway.config.base import Strict
from maas_gateway.config.durations import Duration, LimitWindow
from maas_gateway.config.portal_settings import PortalSettings
from maas_gateway.config.server_settings import ServerSettings
from maas_gateway.config.settings import (
    AdminSettings,
    CapacitySettings,
    DatabaseSettings,
    KeySettings,
    LimitsSettings,
    MetricsSettings,
    OIDCIssuer,
    OIDCSettings,
    SecuritySettings,
)

__all__ = [
    "APIKeyConfig",
    "AdminSettings",
    "BackendConfig",
    "CapacitySettings",
    "DatabaseSettings",
    "GatewayConfig",
    "KeySettings",
    "LimitConfig",
    "LimitUnit",
    "LimitsSettings",
    "MetricsSettings",
    "ModelCapacity",
    "ModelConfig",
    "ModelPricing",
    "OIDCIssuer",
    "OIDCSettings",
    "PortalSettings",
    "PriceVersionConfig",
    "PricingSettings",
    "SecuritySettings",
    "ServerSettings",
    "TeamConfig",
    "TierConfig",
    "UserConfig",
]

LimitUnit = Literal["requests", "tokens", "prompt_tokens", "completion_tokens", "cost"]
_NAME = r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$"
_EXTRA_PATH = re.compile(r"^(/[A-Za-z0-9._-]+)+$")
_EXTRA_PATH_CHARS = 90  # the ledger's endpoint column holds 100 characters
_HOST = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")


class ModelPricing(Strict):
    """The original single price (still accepted): one version effective from the epoch."""

    prompt_per_1k: float = Field(default=0.0, ge=0, description="Price of 1,000 input tokens.")
    completion_per_1k: float = Field(default=0.0, ge=0, description="Price of 1,000 output tokens.")


class PriceVersionConfig(Strict):
    """One version of a model's prices, per million tokens, in `pricing.currency`."""

    effective_from: date | AwareDatetime = Field(
        description="When this version takes effect: a date (midnight UTC) or a time with its offset."
    )
    input_per_million: float = Field(default=0.0, ge=0, description="Price of 1,000,000 input tokens.")
    output_per_million: float = Field(default=0.0, ge=0, description="Price of 1,000,000 output tokens.")
    cached_input_per_million: float | None = Field(
        default=None, ge=0, description="Price of 1,000,000 cached input tokens; omitted: the input price."
    )

    @model_validator(mode="after")
    def _cached_input_is_not_dearer(self) -> PriceVersionConfig:
        # Reserve mode prices the prompt at the input price: a dearer cached price would under-reserve.
        cached = self.cached_input_per_million
        if cached is not None and cached > self.input_per_million:
            raise ValueError("`cached_input_per_million` must not exceed `input_per_million`.")
        return self

    @property
    def starts_at(self) -> float:
        moment = self.effective_from
        if not isinstance(moment, datetime):
            moment = datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
        return moment.timestamp()


class ModelCapacity(Strict):
    """What all users together may use of a model, across every replica (shared through
    `limits.storage`)."""

    max_in_flight: int | None = Field(
        default=None, ge=1, description="Requests to the model in progress at once; omitted: no cap."
    )
    tokens_per_minute: int | None = Field(
        default=None,
        ge=1,
        description="Tokens (prompt and completion, as the backend counts them) per clock minute; "
        "requests pass while any are left. Omitted: no cap.",
    )
    max_queue: int | None = Field(
        default=None, ge=0, description="Replaces `capacity.max_queue` for this model."
    )
    queue_timeout: Duration | None = Field(
        default=None, description="Replaces `capacity.queue_timeout` for this model."
    )


class ModelConfig(Strict):
    name: str = Field(pattern=_NAME, max_length=200)
    backends: list[BackendConfig] = Field(
        min_length=1,
        description="Base URLs, or `{url, weight}`; credentials in one (`https://user:password@host`) are "
        "sent as Basic auth.",
    )
    balancing: BalancingPolicy = Field(
        default="least-outstanding", description="How a request's backend is chosen among the available."
    )
    fallbacks: list[str] = Field(
        default_factory=list, description="Models that answer, in order, when none of its backends can."
    )
    prefix_affinity: PrefixAffinitySettings | None = Field(
        default=None, description="Send requests with the same prompt start to the same backend."
    )
    health_checks: HealthCheckSettings | None = Field(
        default=None, description="Replaces the top-level `health_checks` for this model."
    )
    outlier_detection: OutlierDetectionSettings | None = Field(
        default=None, description="Replaces the top-level `outlier_detection` for this model."
    )
    served_name: str | None = Field(
        default=None, description="The model name the backend expects; defaults to `name`."
    )
    hosts: list[str] = Field(default_factory=list)
    path_prefix: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    tiers: list[str] | None = Field(
        default=None, description="Tiers allowed to use the model; omitted means every tier."
    )
    token_multiplier: float = Field(default=1.0, gt=0, le=1000)
    owned_by: str = "maas-gateway"
    pricing: ModelPricing | None = Field(
        default=None, description="A single price per 1,000 tokens (the older form of `prices`)."
    )
    prices: list[PriceVersionConfig] = Field(
        default_factory=list,
        description="Versions of the model's prices, each from its `effective_from`; a request is charged "
        "at the version in effect when it arrives, so a change never rewrites past charges.",
    )
    capacity: ModelCapacity = Field(default_factory=ModelCapacity)
    extra_paths: list[str] = Field(
        default_factory=list,
        description="Further backend paths this model offers (`/v1/pooling`, `/classify`): forwarded "
        "with authentication and request limits, tokens charged when the answer reports usage.",
    )
    max_model_len: int | None = Field(
        default=None, ge=1, description="The context length shown in `GET /v1/models`; omitted: not shown."
    )

    @field_validator("extra_paths")
    @classmethod
    def _extra_paths_are_new_paths(cls, paths: list[str]) -> list[str]:
        for path in paths:
            if not _EXTRA_PATH.match(path) or ".." in path or len(path) > _EXTRA_PATH_CHARS:
                raise ValueError(
                    f"'{path}' is not a backend path: start with '/', then at most {_EXTRA_PATH_CHARS} "
                    "letters, digits, '-', '_', '.' and '/'."
                )
            # The endpoints the gateway serves itself (proxy/endpoints.py) are matched first, so an
            # extra path naming one of them is never used; its own endpoints are refused outright.
            if path in ("/health", "/ready", "/metrics", "/v1/usage") or path.startswith(
                ("/v1/models", "/v1/responses/", "/admin", "/v1/keys")
            ):
                raise ValueError(f"'{path}' is the gateway's own endpoint, not a model's.")
        return paths

    @field_validator("hosts")
    @classmethod
    def _hosts_are_names(cls, hosts: list[str]) -> list[str]:
        normalised = [host.lower().strip() for host in hosts]
        for host in normalised:
            if not _HOST.match(host):
                raise ValueError(f"'{host}' is not a valid host name (no port, no scheme).")
        return normalised

    @field_validator("backends", mode="before")
    @classmethod
    def _plain_urls_are_backends(cls, backends: object) -> object:
        """A backend written as a URL string is a backend of weight 1."""
        if isinstance(backends, list):
            return [{"url": backend} if isinstance(backend, str) else backend for backend in backends]
        return backends

    @model_validator(mode="after")
    def _one_form_of_prices(self) -> ModelConfig:
        if self.pricing is not None and self.prices:
            raise ValueError("Give a model's prices either as `pricing` or as `prices`, not both.")
        starts = [version.starts_at for version in self.prices]
        if len(set(starts)) != len(starts):
            raise ValueError("Two of the model's `prices` take effect at the same moment.")
        return self

    @property
    def price_versions(self) -> list[PriceVersionConfig]:
        """``prices``, or the older ``pricing`` as one version effective from the epoch."""
        if self.pricing is None:
            return list(self.prices)
        per_million = 1000.0
        return [
            PriceVersionConfig(
                effective_from=datetime(1970, 1, 1, tzinfo=UTC),
                input_per_million=self.pricing.prompt_per_1k * per_million,
                output_per_million=self.pricing.completion_per_1k * per_million,
            )
        ]

    @model_validator(mode="after")
    def _affinity_needs_a_scoring_policy(self) -> ModelConfig:
        if self.prefix_affinity is not None and self.balancing == "round-robin":
            raise ValueError(
                "`prefix_affinity` needs `balancing: least-outstanding` or `queue-aware`; "
                "round robin ignores affinity."
            )
        return self

    @field_serializer("backends")
    def _backends_without_passwords(self, backends: list[BackendConfig]) -> list[str | dict[str, object]]:
        """Wherever the configuration is shown (``GET /admin/models``), a backend's password is not; a
        backend of weight 1 without a cap is shown as its URL, as it is usually written."""
        shown: list[str | dict[str, object]] = []
        for backend in backends:
            url = backend.url
            text = str(url).replace(f":{url.password}@", ":***@", 1) if url.password else str(url)
            if backend.weight == 1 and backend.max_in_flight is None:
                shown.append(text)
                continue
            entry: dict[str, object] = {"url": text, "weight": backend.weight}
            if backend.max_in_flight is not None:
                entry["max_in_flight"] = backend.max_in_flight
            shown.append(entry)
        return shown

    @property
    def upstream_model(self) -> str:
        return self.served_name or self.name

    @property
    def backend_urls(self) -> list[str]:
        return [str(backend.url).rstrip("/") for backend in self.backends]


class PricingSettings(Strict):
    currency: str = Field(
        default="USD",
        pattern=r"^[A-Z]{3}$",
        description="The one currency of every price and `unit: cost` limit (ISO 4217: USD, EUR).",
    )


class LimitConfig(Strict):
    limit: int | float = Field(
        gt=0,
        description="How many units the window allows; for `unit: cost`, an amount of `pricing.currency` "
        "(`5` or `0.25`).",
    )
    unit: LimitUnit
    window: LimitWindow = Field(
        description="A duration aligned to the Unix epoch (`1m`, `1h`, `1d`), or a calendar `day`, `week` "
        "(from Monday) or `month`, aligned to midnight in `limits.timezone`."
    )
    algorithm: Literal["fixed", "sliding"] = Field(
        default="fixed",
        description="`fixed` counts each window on its own; `sliding` also weighs the previous window, so "
        "no one spends twice the limit across a boundary (docs/limits.md).",
    )
    model: str | None = Field(
        default=None, description="Count only requests to this model; omitted counts every model."
    )
    per_model: bool = Field(
        default=False, description="Keep a separate counter for each model instead of one in all."
    )
    scope: Literal["user", "tier", "global"] = Field(
        default="user",
        description="Whose counter: each user's (`user`), all users of the tier together (`tier`), or "
        "everyone's together (`global`; with `model`, a model-wide limit). Teams' and keys' limits are "
        "written under `teams` and on the key.",
    )

    @model_validator(mode="after")
    def _scope_is_single(self) -> LimitConfig:
        if self.unit != "cost" and (isinstance(self.limit, float) and not self.limit.is_integer()):
            raise ValueError(f"A limit in {self.unit} is a whole number; only `unit: cost` takes fractions.")
        if self.unit == "cost" and round(self.limit * 1_000_000) < 1:
            raise ValueError("A cost limit is at least one millionth of the currency.")
        if self.model is not None and self.per_model:
            raise ValueError("A limit is either scoped to one `model` or `per_model`, not both.")
        return self


class TierConfig(Strict):
    description: str = ""
    limits: list[LimitConfig] = Field(default_factory=list)
    reserve: bool = Field(
        default=False,
        description="Reserve each request's worst case before forwarding, then settle to actual usage.",
    )
    reserve_default_max_tokens: int = Field(default=1024, ge=1)
    max_concurrent: int | None = Field(
        default=None,
        ge=1,
        description="Requests one user of the tier may have in progress at once, across every replica; "
        "more wait, then get 429. Omitted: no limit.",
    )
    capacity_share: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="The share of each capped model's `max_in_flight` that the tier's requests may hold "
        "together (0.75: three quarters, at least one slot), so that a flood of this tier leaves slots to "
        "the others. Omitted: all of it.",
    )


class APIKeyConfig(Strict):
    user: str = Field(min_length=1, max_length=200)
    tier: str
    key: SecretStr | None = Field(default=None, description="Plaintext key, hashed at load (demos).")
    key_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    name: str | None = None
    models: list[str] | None = Field(default=None, description="Models this key may use.")
    team: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$",
        description="The team this key's usage is charged to (a name from `teams`).",
    )
    limits: list[LimitConfig] = Field(
        default_factory=list,
        description="Limits on this key alone, beside its owner's tier's (each `scope: user`, counted per "
        "key).",
    )

    @property
    def digest(self) -> str:
        """The SHA-256 hex digest the key is stored under."""
        if self.key_sha256 is not None:
            return self.key_sha256
        assert self.key is not None, "validated: one of key or key_sha256 is set"
        return hashlib.sha256(self.key.get_secret_value().encode("utf-8")).hexdigest()

    @model_validator(mode="after")
    def _one_secret(self) -> APIKeyConfig:
        if (self.key is None) == (self.key_sha256 is None):
            raise ValueError("Give exactly one of `key` (plaintext) or `key_sha256` (hex digest).")
        if self.key is not None and len(self.key.get_secret_value()) < 8:
            raise ValueError("An API key must be at least 8 characters long.")
        return self


class TeamConfig(Strict):
    description: str = ""
    limits: list[LimitConfig] = Field(
        default_factory=list,
        description="Limits on the team's keys together (each `scope: user`, counted per team), beside "
        "each user's tier's.",
    )

    @field_validator("limits")
    @classmethod
    def _counted_per_team(cls, limits: list[LimitConfig]) -> list[LimitConfig]:
        if any(limit.scope != "user" for limit in limits):
            raise ValueError("A team's limits count the team's usage; leave out `scope`.")
        return limits


class UserConfig(Strict):
    tier: str | None = Field(default=None, description="Overrides the tier of the user's keys.")
    limits: list[LimitConfig] | None = Field(
        default=None, description="Replaces the tier's limits for this user only."
    )
    max_concurrent: int | None = Field(
        default=None, ge=1, description="Replaces the tier's `max_concurrent` for this user only."
    )


class GatewayConfig(Strict):
    server: ServerSettings = Field(default_factory=ServerSettings)
    models: list[ModelConfig] = Field(min_length=1)
    tiers: dict[str, TierConfig] = Field(min_length=1)
    api_keys: list[APIKeyConfig] = Field(default_factory=list)
    users: dict[str, UserConfig] = Field(default_factory=dict)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    admin: AdminSettings = Field(default_factory=AdminSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    oidc: OIDCSettings = Field(default_factory=OIDCSettings)
    keys: KeySettings = Field(default_factory=KeySettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    health_checks: HealthCheckSettings = Field(default_factory=HealthCheckSettings)
    outlier_detection: OutlierDetectionSettings = Field(default_factory=OutlierDetectionSettings)
    retry_budget: RetryBudgetSettings = Field(default_factory=RetryBudgetSettings)
    queue_aware: QueueAwareSettings = Field(default_factory=QueueAwareSettings)
    capacity: CapacitySettings = Field(default_factory=CapacitySettings)
    alerts: AlertsSettings = Field(default_factory=AlertsSettings)
    pricing: PricingSettings = Field(default_factory=PricingSettings)
    teams: dict[str, TeamConfig] = Field(
        default_factory=dict, description="Limits per team (cost centre), by team name."
    )
    portal: PortalSettings = Field(default_factory=PortalSettings)

    @property
    def has_scoped_limits(self) -> bool:
        """Whether a limit counts beyond one user: a team's, a key's, a tier's or everyone's."""
        tiers = [*self.tiers.values()]
        beyond_users = any(limit.scope != "user" for tier in tiers for limit in tier.limits)
        teams = any(team.limits for team in self.teams.values())
        return beyond_users or teams or any(key.limits for key in self.api_keys)

    @model_validator(mode="after")
    def _teams_and_key_limits(self) -> GatewayConfig:
        for name in self.teams:
            if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$", name):
                raise ValueError(f"teams: '{name}' is not a team name (letters, digits, '.', '_', '-').")
        for index, key in enumerate(self.api_keys):
            if any(limit.scope != "user" for limit in key.limits):
                raise ValueError(f"api_keys.{index}.limits: a key's limits count the key; leave out `scope`.")
        return self

    @model_validator(mode="after")
    def _references_resolve(self) -> GatewayConfig:
        tiers = set(self.tiers)
        names = [model.name for model in self.models]
        _no_duplicates("models", "name", names)
        _no_duplicates("models", "path_prefix", [m.path_prefix for m in self.models if m.path_prefix])
        for index, model in enumerate(self.models):
            for tier in model.tiers or []:
                _known(f"models.{index}.tiers", tier, tiers, "tier")
            for fallback in model.fallbacks:
                _known(f"models.{index}.fallbacks", fallback, set(names) - {model.name}, "fallback model")
            _no_duplicates(f"models.{index}", "fallback", model.fallbacks)
        for index, key in enumerate(self.api_keys):
            _known(f"api_keys.{index}.tier", key.tier, tiers, "tier")
            for model_name in key.models or []:
                _known(f"api_keys.{index}.models", model_name, set(names), "model")
        namespaces = [issuer.user_namespace for issuer in self.oidc.issuers if issuer.user_namespace]
        _no_duplicates("oidc.issuers", "namespace", namespaces)
        for index, key in enumerate(self.api_keys):
            if problem := self.user_name_problem(key.user):
                raise ValueError(f"api_keys.{index}.user: {problem}")
        for user in self.users:
            if problem := self.user_name_problem(user, identity_provider_users=True):
                raise ValueError(f"users.{user}: {problem}")
        for index, issuer in enumerate(self.oidc.issuers):
            for group, tier in issuer.group_tiers.items():
                _known(f"oidc.issuers.{index}.group_tiers.{group}", tier, tiers, "tier")
            if issuer.default_tier is not None:
                _known(f"oidc.issuers.{index}.default_tier", issuer.default_tier, tiers, "tier")
        for user, override in self.users.items():
            if override.tier is not None:
                _known(f"users.{user}.tier", override.tier, tiers, "tier")
        for tier_name, tier_config in self.tiers.items():
            for index, limit in enumerate(tier_config.limits):
                if limit.model is not None:
                    _known(f"tiers.{tier_name}.limits.{index}.model", limit.model, set(names), "model")
        if self.portal.self_registration.enabled:
            _known("portal.self_registration.tier", self.portal.self_registration.tier, tiers, "tier")
        _no_duplicates("capacity.tier_order", "tier", self.capacity.tier_order)
        for tier in self.capacity.tier_order:
            _known("capacity.tier_order", tier, tiers, "tier")
        if self.alerts.enabled and not self.limits.enabled:
            raise ValueError(
                "alerts: alerts are enabled but limits are off (`limits.enabled: false`), so no budget "
                "is counted and none could fire; enable limits or disable alerts"
            )
        for index, alert_override in enumerate(self.alerts.overrides):
            _known(f"alerts.overrides.{index}.tier", alert_override.tier, tiers, "tier")
        first_seen: dict[str, int] = {}
        for index, key in enumerate(self.api_keys):
            earlier = first_seen.setdefault(key.digest, index)
            if earlier != index:
                raise ValueError(
                    f"api_keys.{index}: the same key as api_keys.{earlier} is configured twice; "
                    "each key must be unique"
                )
        return self

    @property
    def user_namespaces(self) -> set[str]:
        """The namespaces of identity-provider users (``<namespace>:<user>``), one per OIDC issuer."""
        return {issuer.user_namespace for issuer in self.oidc.issuers if issuer.user_namespace}

    def user_name_problem(self, name: str, *, identity_provider_users: bool = False) -> str | None:
        """Why ``name`` cannot be a user name here, or ``None``.

        Names with ``:`` belong to identity-provider users; they are accepted only where such users may be
        named (``identity_provider_users``) and only in the namespace of a configured issuer.
        """
        return _user_name_problem(name, self.user_namespaces, identity_provider_users)

    def configured_tier(self, user: str) -> str | None:
        """The tier the configuration file gives ``user`` (its `users` override, else its first key's)."""
        override = self.users.get(user)
        if override is not None and override.tier is not None:
            return override.tier
        return next((key.tier for key in self.api_keys if key.user == user), None)

    def configures(self, user: str) -> bool:
        return user in self.users or any(key.user == user for key in self.api_keys)


def _user_name_problem(name: str, namespaces: set[str], identity_provider_users: bool) -> str | None:
    namespace, colon, _ = name.partition(":")
    if not colon:
        return None
    if not identity_provider_users:
        return (
            f"the user name '{name}' contains ':', which is reserved for users of an identity provider "
            "('<namespace>:<user>'); choose a name without it."
        )
    if namespace not in namespaces:
        known = ", ".join(sorted(namespaces)) or "none"
        return (
            f"the user name '{name}' names the namespace '{namespace}', which no OIDC issuer uses "
            f"(namespaces: {known})."
        )
    return None


def _known(where: str, value: str, known: set[str], kind: str) -> None:
    if value not in known:
        choices = ", ".join(sorted(known)) or "none"
        raise ValueError(f"{where}: unknown {kind} '{value}' (known: {choices}).")


def _no_duplicates(section: str, field: str, values: list[str]) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{section}: {field} '{value}' is used twice; each must be unique.")
        seen.add(value)
