"""OIDC building blocks without a gateway: JWT detection, group-to-tier mapping, identities, key selection,
and the JWKS cache against an in-process key server with a controlled clock."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from maas_gateway.auth import JWKSCache, OIDCVerifier, looks_like_jwt
from maas_gateway.auth.oidc import groups_of, identity_from_claims, tier_for
from maas_gateway.auth.signing_keys import SigningKey, compatible, select_key
from maas_gateway.auth.user_policy import UserPolicy
from maas_gateway.config.schema import OIDCIssuer, OIDCSettings
from maas_gateway.errors import AuthenticationError, PermissionDeniedError, ServiceUnavailableError
from tests.support.clock import FakeClock
from tests.support.oidc_provider import unsigned_token

ISSUER = OIDCIssuer(
    issuer="https://idp.example",
    audience="maas-gateway",
    group_tiers={"gold": "enterprise", "silver": "premium", "bronze": "free"},
    admin_groups=["ops"],
)
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.mark.parametrize(
    ("credential", "expected"),
    [
        (jwt.encode({"sub": "a"}, RSA_KEY, algorithm="RS256"), True),
        (unsigned_token({"sub": "a"}), True),
        ("premiumuser1_key", False),
        ("a.b.c", False),
        ("eyJ0eXAiOiJKV1QifQ.e30.sig", False),  # a JSON header, but without "alg"
        ("WzFd.e30.sig", False),  # a JSON array, not an object
        ("eyJhbGciOiJSUzI1NiJ9.e30", False),  # two segments
        ("eyJhbGciOiJSUzI1NiJ9..sig", False),
        ("eyJhbGciOiJSUzI1NiJ9.e30.s+g", False),  # '+' is not base64url
        ("eyJhbGciOiJSUzI1NiJ9.é30.sig", False),
    ],
)
def test_looks_like_jwt(credential: str, expected: bool) -> None:
    """Only three base64url segments whose first is a JSON object naming `alg` count as a JWT."""
    assert looks_like_jwt(credential) is expected


def test_first_group_in_mapping_order_wins() -> None:
    """The mapping's order decides, not the order of the user's groups; else the default tier applies."""
    assert tier_for(ISSUER, ["bronze", "gold"]) == "enterprise"
    assert tier_for(ISSUER, ["bronze", "silver"]) == "premium"
    assert tier_for(ISSUER, ["other"]) is None
    assert tier_for(ISSUER.model_copy(update={"default_tier": "free"}), []) == "free"


def test_groups_claim_shapes() -> None:
    """Groups come as a list or one string, possibly nested with a dotted claim name; junk is ignored."""
    assert groups_of({"groups": ["a", 1, "b"]}, "groups") == {"a", "b"}
    assert groups_of({"groups": "a"}, "groups") == {"a"}
    assert groups_of({"realm_access": {"roles": ["x"]}}, "realm_access.roles") == {"x"}
    assert groups_of({"groups": {"a": 1}}, "groups") == frozenset()
    assert groups_of({}, "groups") == frozenset()


def test_identity_from_claims() -> None:
    """User from `sub`, tier from groups, display name from the first name claim present, admin from
    admin groups, and a key id derived from issuer and subject, never from the token."""
    claims = {"sub": "u1", "groups": ["silver", "ops"], "email": "u1@example.com", "name": "U One"}
    identity = identity_from_claims(ISSUER, claims)
    assert (identity.user, identity.tier, identity.source) == ("idp.example:u1", "premium", "oidc")
    assert identity.display_name == "u1@example.com"
    assert identity.is_admin
    assert identity.key_id.startswith("jwt_")
    assert identity.key_id == identity_from_claims(ISSUER, {**claims, "exp": 1}).key_id
    other_issuer = ISSUER.model_copy(update={"issuer": "https://other.example"})
    assert identity.key_id != identity_from_claims(other_issuer, claims).key_id
    plain = identity_from_claims(ISSUER, {"sub": "u2", "groups": ["bronze"]})
    assert (plain.display_name, plain.is_admin) == (None, False)


def test_identity_without_tier_or_user() -> None:
    """No mapped group and no default gives no tier (the policy then refuses with 403 `no_tier` unless an
    override names a tier); no user is 401; users are namespaced by issuer unless mapped on purpose."""
    assert identity_from_claims(ISSUER, {"sub": "u", "groups": ["other"]}).tier == ""
    with pytest.raises(PermissionDeniedError) as denied:
        UserPolicy().tier("idp.example:u", "oidc", "", None, 0.0)
    assert denied.value.code == "no_tier"
    assert denied.value.message.endswith(".")
    overridden = UserPolicy(overrides={"idp.example:u": "free"})
    assert overridden.tier("idp.example:u", "oidc", "", None, 0.0) == "free"
    by_email = ISSUER.model_copy(update={"user_claim": "email", "namespace": ""})
    assert identity_from_claims(by_email, {"sub": "s", "email": "e@x", "groups": ["gold"]}).user == "e@x"
    with pytest.raises(AuthenticationError) as missing:
        identity_from_claims(by_email, {"sub": "s", "groups": ["gold"]})
    assert missing.value.code == "invalid_token"


def _rsa_jwk(kid: str | None = None, **extra: Any) -> dict[str, Any]:
    jwk = RSAAlgorithm.to_jwk(RSA_KEY.public_key(), as_dict=True)
    return {**jwk, **({"kid": kid} if kid else {}), **extra}


def test_key_compatibility_and_selection() -> None:
    """Keys fit algorithms by type, curve and declared alg; symmetric keys fit nothing; without a kid,
    exactly one fitting key is needed."""
    assert compatible(_rsa_jwk(), "PS256")
    assert not compatible(_rsa_jwk(alg="RS256"), "RS384")
    assert not compatible(_rsa_jwk(use="enc"), "RS256")
    assert not compatible({"kty": "oct", "k": "c2VjcmV0"}, "HS256")
    assert not compatible({"kty": "EC", "crv": "P-256"}, "ES384")
    one, two = SigningKey("one", _rsa_jwk("one")), SigningKey("two", _rsa_jwk("two"))
    assert select_key([one, two], "two", "RS256") is two
    assert select_key([one, two], "three", "RS256") is None
    assert select_key([one], None, "RS256") is one
    assert select_key([one, two], None, "RS256") is None


class _KeyServer:
    """An in-process issuer for the cache tests: discovery and a JWKS whose keys tests change."""

    def __init__(self) -> None:
        self.url = ""
        self.keys: list[dict[str, Any]] = [_rsa_jwk("k1")]
        self.jwks_fetches = 0
        self.up = True
        self.delay = 0.0

    async def _discovery(self, request: web.Request) -> web.Response:
        return web.json_response({"issuer": self.url, "jwks_uri": self.url + "/jwks"})

    async def _jwks(self, request: web.Request) -> web.Response:
        self.jwks_fetches += 1
        await asyncio.sleep(self.delay)
        return web.json_response({"keys": self.keys}) if self.up else web.Response(status=500)


@asynccontextmanager
async def _serving(server: _KeyServer) -> AsyncIterator[OIDCIssuer]:
    app = web.Application()
    app.router.add_get("/.well-known/openid-configuration", server._discovery)
    app.router.add_get("/jwks", server._jwks)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    server.url = f"http://127.0.0.1:{port}"
    try:
        yield OIDCIssuer(issuer=server.url, audience="maas-gateway", default_tier="free")
    finally:
        await runner.cleanup()


CacheFactory = Callable[..., JWKSCache]


def _run(test: Callable[[_KeyServer, OIDCIssuer, CacheFactory], Awaitable[None]]) -> None:
    """Run ``test`` against a fresh key server; every cache it makes is closed afterwards."""

    async def main() -> None:
        server = _KeyServer()
        caches: list[JWKSCache] = []

        def make_cache(**settings: Any) -> JWKSCache:
            caches.append(JWKSCache(http_timeout=2, **settings))
            return caches[-1]

        async with _serving(server) as issuer:
            try:
                await test(server, issuer, make_cache)
            finally:
                for cache in caches:
                    await cache.aclose()

    asyncio.run(main())


def test_cache_coalesces_and_rate_limits_refreshes() -> None:
    """Concurrent first uses share one fetch; unknown key ids refetch at most once per interval; the
    cache expires after its TTL."""

    async def check(server: _KeyServer, issuer: OIDCIssuer, make_cache: CacheFactory) -> None:
        clock = FakeClock(1000.0)
        cache = make_cache(cache_ttl=300, min_refresh_interval=10, clock=clock)
        server.delay = 0.05
        found = await asyncio.gather(*(cache.key(issuer, "k1", "RS256") for _ in range(20)))
        assert all(key is not None and key.kid == "k1" for key in found)
        assert server.jwks_fetches == 1
        server.keys = [_rsa_jwk("k2")]
        assert await cache.key(issuer, "k2", "RS256") is None  # fetched too recently to look again
        clock.now += 10
        unknown = await asyncio.gather(*(cache.key(issuer, "k2", "RS256") for _ in range(5)))
        assert all(key is not None for key in unknown)
        assert server.jwks_fetches == 2
        assert await cache.key(issuer, "k1", "RS256") is None
        assert server.jwks_fetches == 2
        clock.now += 300
        server.keys = [_rsa_jwk("k3")]
        assert await cache.key(issuer, "k3", "RS256") is not None
        assert server.jwks_fetches == 3

    _run(check)


def test_cache_serves_stale_keys_while_the_provider_is_down() -> None:
    """Cached keys outlive a failed refresh; a key id they lack is a 503 while the provider is down (the
    token may carry a new key); with no keys at all, the failure is a 503 sentence naming the issuer."""

    async def check(server: _KeyServer, issuer: OIDCIssuer, make_cache: CacheFactory) -> None:
        clock = FakeClock(1000.0)
        cache = make_cache(cache_ttl=60, min_refresh_interval=5, clock=clock)
        assert await cache.key(issuer, "k1", "RS256") is not None
        server.up = False
        clock.now += 61
        assert await cache.key(issuer, "k1", "RS256") is not None  # and a refresh starts in the background
        with pytest.raises(ServiceUnavailableError) as unknown_while_down:
            await cache.key(issuer, "k9", "RS256")  # joins that refresh, which fails
        assert "answered HTTP 500" in unknown_while_down.value.message
        assert server.jwks_fetches == 2
        clock.now += 4
        with pytest.raises(ServiceUnavailableError):
            await cache.key(issuer, "k9", "RS256")  # rate-limited, but the provider is known to be down
        assert server.jwks_fetches == 2
        assert await cache.key(issuer, "k1", "RS256") is not None
        fresh = make_cache(cache_ttl=60, min_refresh_interval=5, clock=clock)
        with pytest.raises(ServiceUnavailableError) as down:
            await fresh.key(issuer, "k1", "RS256")
        assert down.value.message.startswith(
            f"The identity provider's signing keys cannot be fetched (issuer {issuer.issuer}): "
        )
        assert down.value.message.endswith(". Try again shortly.")
        wrong = issuer.model_copy(
            update={
                "issuer": "https://impostor.example",
                "discovery_url": server.url + "/.well-known/openid-configuration",
            }
        )
        with pytest.raises(ServiceUnavailableError) as mismatch:
            await fresh.key(wrong, "k1", "RS256")
        assert "names the issuer" in mismatch.value.message

    _run(check)


def test_verifier_accepts_every_asymmetric_key_type() -> None:
    """RSA (RS384, PS256 with an RSA key that declares no alg), EC P-256 and Ed25519 tokens verify."""
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ed_key = ed25519.Ed25519PrivateKey.generate()

    async def check(server: _KeyServer, issuer: OIDCIssuer, make_cache: CacheFactory) -> None:
        server.keys = [
            _rsa_jwk("rsa"),
            {**ECAlgorithm.to_jwk(ec_key.public_key(), as_dict=True), "kid": "ec"},
            {**OKPAlgorithm.to_jwk(ed_key.public_key(), as_dict=True), "kid": "ed"},
        ]
        verifier = OIDCVerifier(
            OIDCSettings(issuers=[issuer]), keys=make_cache(cache_ttl=60, min_refresh_interval=5)
        )
        claims = {"iss": issuer.issuer, "aud": "maas-gateway", "sub": "u", "exp": int(time.time()) + 60}
        signed: list[tuple[Any, str, str]] = [
            (RSA_KEY, "RS384", "rsa"),
            (RSA_KEY, "PS256", "rsa"),
            (ec_key, "ES256", "ec"),
            (ed_key, "EdDSA", "ed"),
        ]
        for key, alg, kid in signed:
            identity = await verifier.verify(jwt.encode(claims, key, algorithm=alg, headers={"kid": kid}))
            assert (identity.user, identity.tier) == (f"{issuer.user_namespace}:u", "free")
        assert server.jwks_fetches == 1

    _run(check)
