"""The declarative configuration file, validated with pydantic.

One ``GatewayConfig`` describes the server, the models and their backends, the tiers with their limits,
the API keys and per-user overrides. Cross-references (a key's tier, a model's tiers, a limit's model) are
checked here so a bad file fails at load time with a message naming the field.
"""

from __future__ import annotations

import hashlib
import re
from typing import Literal

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from maas_gateway.config.durations import Duration

__all__ = [
    "APIKeyConfig",
    "AdminSettings",
    "DatabaseSettings",
    "GatewayConfig",
    "KeySettings",
    "LimitConfig",
    "LimitUnit",
    "LimitsSettings",
    "MetricsSettings",
    "ModelConfig",
    "ModelPricing",
    "OIDCIssuer",
    "OIDCSettings",
    "ServerSettings",
    "TierConfig",
    "UserConfig",
]

LimitUnit = Literal["requests", "tokens", "prompt_tokens", "completion_tokens"]
_NAME = r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$"
_HOST = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")


class _Strict(BaseModel):
    """Unknown fields are mistakes (a typo must not silently disable a limit)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    upstream_connect_timeout: Duration = 5.0
    upstream_read_timeout: Duration = 300.0
    upstream_max_connections: int = Field(default=1000, ge=1)
    access_log: bool = True


class ModelPricing(_Strict):
    prompt_per_1k: float = Field(default=0.0, ge=0, description="Price of 1,000 input tokens.")
    completion_per_1k: float = Field(default=0.0, ge=0, description="Price of 1,000 output tokens.")

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.prompt_per_1k + completion_tokens * self.completion_per_1k) / 1000


class ModelConfig(_Strict):
    name: str = Field(pattern=_NAME, max_length=200)
    backends: list[AnyHttpUrl] = Field(min_length=1)
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
    pricing: ModelPricing | None = Field(default=None, description="Prices for chargeback.")

    @field_validator("hosts")
    @classmethod
    def _hosts_are_names(cls, hosts: list[str]) -> list[str]:
        normalised = [host.lower().strip() for host in hosts]
        for host in normalised:
            if not _HOST.match(host):
                raise ValueError(f"'{host}' is not a valid host name (no port, no scheme).")
        return normalised

    @property
    def upstream_model(self) -> str:
        return self.served_name or self.name

    @property
    def backend_urls(self) -> list[str]:
        return [str(url).rstrip("/") for url in self.backends]


class LimitConfig(_Strict):
    limit: int = Field(ge=1, description="How many units the window allows.")
    unit: LimitUnit
    window: Duration
    model: str | None = Field(
        default=None, description="Count only requests to this model; omitted counts every model."
    )
    per_model: bool = Field(
        default=False, description="Keep a separate counter for each model instead of one in all."
    )

    @model_validator(mode="after")
    def _scope_is_single(self) -> LimitConfig:
        if self.model is not None and self.per_model:
            raise ValueError("A limit is either scoped to one `model` or `per_model`, not both.")
        return self


class TierConfig(_Strict):
    description: str = ""
    limits: list[LimitConfig] = Field(default_factory=list)
    reserve: bool = Field(
        default=False,
        description="Reserve each request's worst case before forwarding, then settle to actual usage.",
    )
    reserve_default_max_tokens: int = Field(default=1024, ge=1)


class APIKeyConfig(_Strict):
    user: str = Field(min_length=1, max_length=200)
    tier: str
    key: SecretStr | None = Field(default=None, description="Plaintext key, hashed at load (demos).")
    key_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    name: str | None = None
    models: list[str] | None = Field(default=None, description="Models this key may use.")

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


class UserConfig(_Strict):
    tier: str | None = Field(default=None, description="Overrides the tier of the user's keys.")
    limits: list[LimitConfig] | None = Field(
        default=None, description="Replaces the tier's limits for this user only."
    )


class LimitsSettings(_Strict):
    enabled: bool = True
    storage: str = Field(
        default="memory",
        description="`memory` (one process), or a `redis://`, `rediss://` or `redis+cluster://` URL.",
    )
    failure_policy: Literal["fail-closed", "fail-open"] = Field(
        default="fail-closed",
        description="When the storage is unreachable: refuse with 503, or limit per replica in memory.",
    )
    storage_timeout: Duration = Field(
        default=1.0, description="Longest wait for the storage before the failure policy applies."
    )
    retry_interval: Duration = Field(
        default=1.0, description="After a storage failure, how long to wait before trying it again."
    )

    @field_validator("storage")
    @classmethod
    def _known_storage(cls, url: str) -> str:
        if url != "memory" and not url.startswith(("redis://", "rediss://", "redis+cluster://", "unix://")):
            raise ValueError("must be `memory` or a redis://, rediss://, redis+cluster:// or unix:// URL")
        return url


class DatabaseSettings(_Strict):
    url: str | None = Field(
        default=None,
        description="SQLAlchemy async URL (sqlite+aiosqlite:///FILE or postgresql+asyncpg://...); "
        "omitted keeps usage in memory only.",
    )
    migrate_on_start: bool = True
    flush_interval: Duration = Field(default=1.0, description="Longest a usage record waits in memory.")
    batch_size: int = Field(default=500, ge=1, le=10_000)
    max_buffer_records: int = Field(
        default=100_000, ge=100, description="Records held in memory while the database is down."
    )
    spool_dir: str = Field(
        default="./maas-data/spool", description="Where records go once the memory buffer is full."
    )
    pool_size: int = Field(default=5, ge=1)

    @field_validator("url")
    @classmethod
    def _async_driver(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return url


class OIDCIssuer(_Strict):
    issuer: str = Field(description="The issuer URL, exactly as in the tokens' `iss` claim.")
    audience: str | list[str] = Field(description="Accepted `aud` value(s): the gateway's client id.")
    discovery_url: str | None = Field(
        default=None, description="Defaults to `{issuer}/.well-known/openid-configuration`."
    )
    groups_claim: str = Field(default="groups", description="The claim listing the user's groups.")
    group_tiers: dict[str, str] = Field(
        default_factory=dict,
        description="Group name to tier; when a user is in several, the first listed wins.",
    )
    default_tier: str | None = Field(
        default=None, description="Tier for users in no mapped group; omitted rejects them (403)."
    )
    admin_groups: list[str] = Field(
        default_factory=list, description="Members of these groups may use the admin API."
    )
    algorithms: list[str] = Field(
        default_factory=lambda: ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"],
        description="Accepted signature algorithms; `none` and HMAC are never accepted.",
    )
    user_claim: str = "sub"
    name_claims: list[str] = Field(default_factory=lambda: ["preferred_username", "email", "name"])

    @field_validator("algorithms")
    @classmethod
    def _asymmetric_only(cls, algorithms: list[str]) -> list[str]:
        for algorithm in algorithms:
            if algorithm.lower() == "none" or algorithm.upper().startswith("HS"):
                raise ValueError(
                    f"'{algorithm}' cannot be accepted: only asymmetric signatures prove the issuer"
                )
        if not algorithms:
            raise ValueError("at least one algorithm is needed")
        return algorithms


class OIDCSettings(_Strict):
    issuers: list[OIDCIssuer] = Field(default_factory=list)
    clock_skew: Duration = Field(default=30.0, description="Tolerance for exp/nbf/iat.")
    jwks_cache_ttl: Duration = Field(default=300.0, description="How long fetched signing keys are kept.")
    jwks_min_refresh_interval: Duration = Field(
        default=10.0, description="Least time between two fetches of one issuer's keys (unknown kid)."
    )
    http_timeout: Duration = 5.0


class KeySettings(_Strict):
    max_lifetime: Duration = Field(default=90 * 86400, description="Longest lifetime a new key may ask for.")
    default_lifetime: Duration = Field(default=30 * 86400, description="Lifetime when a request names none.")
    ephemeral_max_lifetime: Duration = Field(default=3600, le=3600, description="Cap for ephemeral keys.")
    max_keys_per_user: int = Field(default=100, ge=1)
    cache_ttl: Duration = Field(
        default=2.0, description="How long a replica trusts a looked-up key; bounds revocation delay."
    )
    purge_interval: Duration = Field(default=3600, description="How often expired keys are deleted.")

    @model_validator(mode="after")
    def _default_within_max(self) -> KeySettings:
        if self.default_lifetime > self.max_lifetime:
            raise ValueError("default_lifetime cannot be longer than max_lifetime")
        return self


class AdminSettings(_Strict):
    key_sha256: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="Digest of the admin key; the MAAS_ADMIN_KEY environment variable also works.",
    )


class MetricsSettings(_Strict):
    enabled: bool = True
    user_label: bool = Field(default=True, description="Label metrics by user; turn off for very many users.")


class GatewayConfig(_Strict):
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

    @model_validator(mode="after")
    def _references_resolve(self) -> GatewayConfig:
        tiers = set(self.tiers)
        names = [model.name for model in self.models]
        _no_duplicates("models", "name", names)
        _no_duplicates("models", "path_prefix", [m.path_prefix for m in self.models if m.path_prefix])
        for index, model in enumerate(self.models):
            for tier in model.tiers or []:
                _known(f"models.{index}.tiers", tier, tiers, "tier")
        for index, key in enumerate(self.api_keys):
            _known(f"api_keys.{index}.tier", key.tier, tiers, "tier")
            for model_name in key.models or []:
                _known(f"api_keys.{index}.models", model_name, set(names), "model")
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
        first_seen: dict[str, int] = {}
        for index, key in enumerate(self.api_keys):
            earlier = first_seen.setdefault(key.digest, index)
            if earlier != index:
                raise ValueError(
                    f"api_keys.{index}: the same key as api_keys.{earlier} is configured twice; "
                    "each key must be unique"
                )
        return self


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
