"""Authentication: reading the Authorization header, key hashing, the key store and the authenticator."""

from __future__ import annotations

import asyncio
import json

import pytest

from maas_gateway.auth import (
    Authenticator,
    Identity,
    InMemoryKeyStore,
    KeyRecord,
    hash_key,
    key_id_for,
    parse_authorization,
)
from maas_gateway.auth.user_policy import UserPolicy
from maas_gateway.errors import AuthenticationError

ALICE_KEY = "alice-secret-key-0001"
BOB_KEY = "bob-secret-key-0002"


def _store() -> InMemoryKeyStore:
    return InMemoryKeyStore(
        [
            KeyRecord(hash_key(ALICE_KEY), "alice", "free", "laptop", frozenset({"simulator-model"})),
            KeyRecord(hash_key(BOB_KEY), "bob", "premium"),
        ]
    )


def _authenticate(authenticator: Authenticator, credential: str) -> Identity:
    return asyncio.run(authenticator.authenticate(credential))


@pytest.mark.parametrize(
    "header",
    ["APIKEY k-123", "Bearer k-123", "bearer k-123", "BEARER k-123", "apikey k-123", "  Bearer   k-123  "],
)
def test_parse_authorization_accepts_both_schemes(header: str) -> None:
    """APIKEY and Bearer are accepted in any letter case, with surrounding spaces ignored."""
    assert parse_authorization(header) == "k-123"


@pytest.mark.parametrize(
    ("header", "code", "fragment"),
    [
        (None, "missing_api_key", "No credentials were given."),
        ("", "missing_api_key", "No credentials were given."),
        ("Basic dXNlcjpwYXNz", "invalid_authorization_scheme", "unsupported scheme"),
        ("Token abc", "invalid_authorization_scheme", "unsupported scheme"),
        ("k-123", "invalid_authorization_scheme", "unsupported scheme"),
        ("Bearer", "missing_api_key", "carries no key"),
        ("APIKEY    ", "missing_api_key", "carries no key"),
    ],
)
def test_parse_authorization_rejects_bad_headers(header: str | None, code: str, fragment: str) -> None:
    """A missing header, an unknown scheme or a scheme without a key is a 401 with a whole sentence."""
    with pytest.raises(AuthenticationError) as caught:
        parse_authorization(header)
    error = caught.value
    assert error.status_code == 401
    assert error.code == code
    assert fragment in error.message
    assert error.message[0].isupper()
    assert error.message.endswith(".")
    assert "dXNlcjpwYXNz" not in error.message


def test_authentication_error_body_is_openai_shaped() -> None:
    """An AuthenticationError serialises to an OpenAI error body of type authentication_error."""
    with pytest.raises(AuthenticationError) as caught:
        parse_authorization("Basic x")
    body = json.loads(caught.value.body())
    assert body["error"]["type"] == "authentication_error"
    assert body["error"]["code"] == "invalid_authorization_scheme"
    assert body["error"]["message"] == caught.value.message


def test_hash_key_is_sha256_hex() -> None:
    """hash_key is the hex SHA-256 of the UTF-8 key (checked against the standard test vector)."""
    assert hash_key("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert len(hash_key("ключ")) == 64


def test_key_id_is_a_short_prefix_of_the_hash() -> None:
    """The public key id is 'key_' and the first 12 hex digits of the hash."""
    assert key_id_for(hash_key("abc")) == "key_ba7816bf8f01"
    assert KeyRecord(hash_key("abc"), "u", "t").key_id == "key_ba7816bf8f01"


def test_authenticator_returns_the_identity_of_a_key() -> None:
    """A known key yields the user's Identity: user, tier, key id (not the key) and allowed models."""
    identity = _authenticate(Authenticator(_store()), ALICE_KEY)
    assert identity == Identity(
        user="alice",
        tier="free",
        key_id=key_id_for(hash_key(ALICE_KEY)),
        models=frozenset({"simulator-model"}),
    )
    assert ALICE_KEY not in identity.key_id
    assert ALICE_KEY not in repr(identity)
    assert identity.source == "config_key"
    bob = _authenticate(Authenticator(_store()), BOB_KEY)
    assert (bob.user, bob.tier, bob.models) == ("bob", "premium", None)


def test_authenticator_applies_tier_overrides() -> None:
    """A tier override replaces the tier of all the user's keys and leaves other users alone."""
    authenticator = Authenticator(_store(), policy=UserPolicy(overrides={"alice": "enterprise"}))
    assert _authenticate(authenticator, ALICE_KEY).tier == "enterprise"
    assert _authenticate(authenticator, BOB_KEY).tier == "premium"


@pytest.mark.parametrize(
    "credential", ["wrong-key-0000", ALICE_KEY.upper(), ALICE_KEY + " ", hash_key(ALICE_KEY)]
)
def test_authenticator_rejects_an_unknown_key(credential: str) -> None:
    """A key that is not stored (including the stored hash itself) is a 401 invalid_api_key."""
    with pytest.raises(AuthenticationError) as caught:
        _authenticate(Authenticator(_store()), credential)
    assert caught.value.status_code == 401
    assert caught.value.code == "invalid_api_key"
    assert caught.value.message == "The API key is not valid."


def test_identity_may_use_follows_the_allow_list() -> None:
    """An Identity without an allow-list may use any model; with one, only the models listed."""
    assert Identity("u", "free", "key_x").may_use("anything")
    limited = Identity("u", "free", "key_x", models=frozenset({"a"}))
    assert limited.may_use("a")
    assert not limited.may_use("b")


def test_key_store_refuses_the_same_key_twice() -> None:
    """Configuring the same key twice is refused, naming the key id and never the key."""
    record = KeyRecord(hash_key(ALICE_KEY), "alice", "free")
    with pytest.raises(ValueError, match="configured twice") as caught:
        InMemoryKeyStore([record, KeyRecord(hash_key(ALICE_KEY), "mallory", "premium")])
    assert record.key_id in str(caught.value)
    assert ALICE_KEY not in str(caught.value)


def test_key_store_finds_records_by_hash() -> None:
    """The store finds a record by the key's hash, returns None for other hashes, and counts records."""
    store = _store()
    assert len(store) == 2
    found = asyncio.run(store.find(hash_key(BOB_KEY)))
    assert found is not None
    assert found.user == "bob"
    assert asyncio.run(store.find(hash_key("nobody-key"))) is None
    assert asyncio.run(InMemoryKeyStore().find(hash_key(BOB_KEY))) is None
