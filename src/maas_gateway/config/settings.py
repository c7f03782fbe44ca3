"""Operational settings of the configuration file: limit storage, database, keys, OIDC, admin, metrics."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from maas_gateway.config.base import Strict
from maas_gateway.config.durations import Duration

__all__ = [
    "AdminSettings",
    "AuthFailureSettings",
    "CapacitySettings",
    "DatabaseSettings",
    "KeySettings",
    "LimitsSettings",
    "MetricsSettings",
    "OIDCIssuer",
    "OIDCSettings",
    "SecuritySettings",
]


class LimitsSettings(Strict):
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
    timezone: str = Field(
        default="UTC",
        description="The IANA time zone (`Europe/Berlin`) whose midnight starts the calendar windows `day`, "
        "`week` and `month`.",
    )
    min_clamped_tokens: int = Field(
        default=16,
        ge=1,
        description="In reserve mode, a request whose `max_tokens` does not fit is forwarded with "
        "`max_tokens` lowered to what remains when at least this many remain, and refused otherwise.",
    )

    media_part_tokens: int = Field(
        default=2048,
        ge=1,
        description="In reserve mode, the tokens each image, audio or file part of a prompt is reckoned at "
        "(an allowance, not a bound: such a part's tokens depend on the model).",
    )

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"'{name}' is not a known IANA time zone; write one such as UTC or Europe/Berlin."
            ) from None
        return name

    @field_validator("storage")
    @classmethod
    def _known_storage(cls, url: str) -> str:
        if url != "memory" and not url.startswith(("redis://", "rediss://", "redis+cluster://", "unix://")):
            raise ValueError("must be `memory` or a redis://, rediss://, redis+cluster:// or unix:// URL")
        if url.startswith(("redis://", "rediss://", "unix://")):
            from maas_gateway.redis_urls import url_problem

            if problem := url_problem(url):
                raise ValueError(problem)
        return url


class CapacitySettings(Strict):
    """How requests wait for a capped model, and how long a replica's slots outlive it (docs/routing.md)."""

    tier_order: list[str] = Field(
        default_factory=list,
        description="Tiers whose waiting requests are served first, best first (`[enterprise, premium, "
        "free]`); tiers not listed come after them, together. Empty: every tier waits alike.",
    )
    max_queue: int = Field(
        default=100,
        ge=0,
        description="Requests that may wait for one model's slot in each gateway process; past it the "
        "newest request of the heaviest user of the worst tier gives way to a better claim, or the "
        "newcomer gets 503 at once. 0: no waiting.",
    )
    queue_timeout: Duration = Field(
        default=10.0,
        description="Longest a request waits for a slot; then 503 `capacity_exhausted` (the model's caps) "
        "or 429 `concurrency_limit_exceeded` (the user's own), with Retry-After.",
    )
    lease_ttl: Duration = Field(
        default=30.0,
        ge=1.0,
        le=3600.0,  # a Redis slot set outlives its last write by an hour (capacity/redis_storage.py)
        description="How long a slot outlives a gateway process that died while holding it; a live "
        "process renews its slots every third of this.",
    )
    poll_interval: Duration = Field(
        default=0.05,
        le=1.0,
        description="How often a waiting request asks again for a slot that another replica may have "
        "freed (one freed in the same process wakes it at once).",
    )


class DatabaseSettings(Strict):
    url: str | None = Field(
        default=None,
        description="SQLAlchemy async URL (sqlite+aiosqlite:///FILE or postgresql+asyncpg://...); "
        "omitted keeps usage in memory only.",
    )
    migrate_on_start: bool = True
    flush_interval: Duration = Field(default=1.0, description="Longest a usage record waits in memory.")
    batch_size: int = Field(default=500, ge=1, le=10_000)
    max_buffer_records: int = Field(
        default=100_000,
        ge=100,
        description="Records held in memory while neither the database nor the spool takes them (a full "
        "disk); past it the oldest are dropped and counted in maas_ledger_records_dropped.",
    )
    spool_dir: str = Field(
        default="./maas-data/spool",
        description="Where records go while the database is unreachable; replayed once it answers, and "
        "at start. Keep it on a persistent volume.",
    )
    spool_commit_interval: Duration = Field(
        default=0.02,
        gt=0,
        le=1.0,
        description="While the database is unreachable, records are appended to the spool (one write, one "
        "fsync) this often: a crash during an outage loses at most this interval's records.",
    )
    pool_size: int = Field(default=5, ge=1)
    counter_interval: Duration | None = Field(
        default=60.0,
        gt=0,
        description="How often each backend's own token counters (vLLM's /metrics) are read and stored for "
        "`maas usage reconcile`; null reads none.",
    )
    raw_retention: Duration | None = Field(
        default=90 * 86400.0,
        gt=0,
        description="How long raw usage records (and backend counter readings) are kept; the hourly and "
        "daily rollups are kept for good. null keeps raw records forever.",
    )
    prune_interval: Duration = Field(
        default=3600.0, gt=0, description="How often expired records are pruned."
    )
    prune_batch_size: int = Field(
        default=5000, ge=1, le=100_000, description="Records deleted per transaction while pruning."
    )

    @field_validator("url")
    @classmethod
    def _async_driver(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return url


class OIDCIssuer(Strict):
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
    namespace: str | None = Field(
        default=None,
        pattern=r"^([A-Za-z0-9][A-Za-z0-9._/-]*)?$",
        max_length=100,
        description="Prefix of this issuer's user names (`<namespace>:<user>`), so that users of different "
        "sources never share limits, keys or usage; defaults to the issuer's host and path. An empty "
        "string maps the issuer's users onto the configuration's and administrators' users of the same "
        "name, on purpose.",
    )
    owner_revalidation: Duration | None = Field(
        default=None,
        description="Keys of this issuer's users stop working when the user has presented no valid token "
        "for this long (they work again after the next sign-in); omitted, keys work until they expire.",
    )
    portal_client_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="The portal's client at this issuer (the ID token's audience); omitted, the sign-in page "
        "offers no button for this issuer.",
    )
    portal_client_secret_env: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="The environment variable holding the client secret (never the secret itself, so it "
        "stays out of configuration files); omitted for a public client, which PKCE alone protects.",
    )
    portal_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=60,
        description="The button's label, 'Sign in with <portal_name>'; defaults to the issuer's host.",
    )
    portal_redirect_uri: str | None = Field(
        default=None,
        pattern=r"^https?://[^/?#\s]+/portal/auth/callback$",
        description="The redirect URI registered at the issuer, `<gateway-url>/portal/auth/callback`; "
        "defaults to that path on the address the browser used.",
    )

    @property
    def portal_label(self) -> str:
        """The name on this issuer's sign-in button."""
        return self.portal_name or urlsplit(self.issuer).netloc or self.issuer

    @property
    def user_namespace(self) -> str:
        """The namespace of this issuer's users: the configured one, or the issuer's host and path."""
        if self.namespace is not None:
            return self.namespace
        parts = urlsplit(self.issuer)
        return (parts.netloc.replace(":", "_") + parts.path.rstrip("/")) or "oidc"

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


class OIDCSettings(Strict):
    issuers: list[OIDCIssuer] = Field(default_factory=list)
    clock_skew: Duration = Field(default=30.0, description="Tolerance for exp/nbf/iat.")
    jwks_cache_ttl: Duration = Field(
        default=300.0,
        description="Age at which signing keys are refreshed in the background; tokens keep using them.",
    )
    jwks_min_refresh_interval: Duration = Field(
        default=10.0, description="Least time between two fetches of one issuer's keys."
    )
    jwks_max_stale_age: Duration = Field(
        default=86400.0,
        description="While fetches fail, cached signing keys are trusted up to this age, then refused (503).",
    )
    unknown_kid_wait: Duration = Field(
        default=2.0,
        description="Longest a token with a key id not in the cache waits for the issuer's keys.",
    )
    http_timeout: Duration = Field(
        default=5.0, description="Longest one discovery document or key set may take to arrive."
    )

    @model_validator(mode="after")
    def _stale_age_covers_ttl(self) -> OIDCSettings:
        if self.jwks_max_stale_age < self.jwks_cache_ttl:
            raise ValueError("jwks_max_stale_age cannot be shorter than jwks_cache_ttl")
        return self


class KeySettings(Strict):
    max_lifetime: Duration = Field(default=90 * 86400, description="Longest lifetime a new key may ask for.")
    default_lifetime: Duration = Field(default=30 * 86400, description="Lifetime when a request names none.")
    ephemeral_max_lifetime: Duration = Field(default=3600, le=3600, description="Cap for ephemeral keys.")
    max_keys_per_user: int = Field(default=100, ge=1)
    cache_ttl: Duration = Field(
        default=2.0, description="How long a replica trusts a looked-up key; bounds revocation delay."
    )
    purge_interval: Duration = Field(default=3600, description="How often expired keys are deleted.")
    outage_grace: Duration = Field(
        default=3600,
        description="While the database is unreachable, keys looked up within this time keep working "
        "from the cache; other keys get 503 identity_unavailable.",
    )
    change_poll_interval: Duration = Field(
        default=0.25,
        description="How often each process reads the database's log of revocations and user changes "
        "(PostgreSQL NOTIFY and Redis pub/sub also wake it at once).",
    )

    @model_validator(mode="after")
    def _default_within_max(self) -> KeySettings:
        if self.default_lifetime > self.max_lifetime:
            raise ValueError("default_lifetime cannot be longer than max_lifetime")
        return self


class AdminSettings(Strict):
    key_sha256: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="Digest of the admin key; the MAAS_ADMIN_KEY environment variable also works.",
    )


class MetricsSettings(Strict):
    enabled: bool = True
    user_label: bool = Field(default=True, description="Label metrics by user; turn off for very many users.")
    listen: str = Field(
        default="127.0.0.1:9464",
        description="`host:port` of the metrics listener (`[::1]:9464` for IPv6); metrics name users, so "
        "keep it off public networks.",
    )
    on_api_port: bool = Field(
        default=False, description="Also serve /metrics on the API port, to the admin credential only."
    )

    @field_validator("listen")
    @classmethod
    def _listen_address(cls, listen: str) -> str:
        from maas_gateway.config.addresses import parse_listen_address

        parse_listen_address(listen)
        return listen

    @property
    def address(self) -> tuple[str, int]:
        """The metrics listener's host and port."""
        from maas_gateway.config.addresses import parse_listen_address

        return parse_listen_address(self.listen)


class AuthFailureSettings(Strict):
    """The failed-authentication throttle: a token bucket per client address (docs/identity.md)."""

    burst: int = Field(
        default=20,
        ge=1,
        description="Failed authentications one client address may make in a row before it gets 429.",
    )
    per: Duration = Field(
        default=60.0,
        description="Time in which a throttled address's allowance refills completely "
        "(one more attempt every per/burst); also the longest a refusal lasts.",
    )
    max_addresses: int = Field(
        default=100_000,
        ge=1,
        description="Addresses with recent failures remembered at most; the least recent are forgotten.",
    )


class SecuritySettings(Strict):
    auth_failures: AuthFailureSettings = Field(default_factory=AuthFailureSettings)
