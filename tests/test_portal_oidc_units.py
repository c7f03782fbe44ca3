"""The sign-in's login state and PKCE challenge, and the password-less account of a provider's user."""

from __future__ import annotations

import asyncio
import base64

import pytest
from argon2 import PasswordHasher
from authlib.oauth2.rfc7636 import create_s256_code_challenge  # type: ignore[import-untyped]  # no stubs; one pure function, as an independent reference

from maas_gateway.portal.oidc.accounts import NO_PASSWORD
from maas_gateway.portal.oidc.login_state import LOGIN_STATE_LIFETIME, LoginState, pkce_challenge
from maas_gateway.portal.passwords import Passwords


def test_the_s256_challenge_agrees_with_authlibs() -> None:
    """The S256 challenge of fresh verifiers is what an independent implementation (Authlib's, the one
    behind many providers) computes, and never the verifier itself."""
    for _ in range(20):
        verifier = LoginState.new("https://idp", "https://gw/portal/auth/callback", "/", 0.0).verifier
        assert pkce_challenge(verifier) == create_s256_code_challenge(verifier)
        assert pkce_challenge(verifier) != verifier


def test_each_attempt_has_fresh_random_values_and_survives_its_cookie() -> None:
    """Two attempts share no state, nonce or verifier (43 base64url characters, 256 bits each); a state
    read back from its cookie is the same state; it expires after LOGIN_STATE_LIFETIME."""
    one = LoginState.new("https://idp", "https://gw/portal/auth/callback", "/portal/", 1000.0)
    two = LoginState.new("https://idp", "https://gw/portal/auth/callback", "/portal/", 1000.0)
    assert {one.state, one.nonce, one.verifier}.isdisjoint({two.state, two.nonce, two.verifier})
    assert len(one.verifier) == 43
    assert LoginState.from_cookie(one.to_cookie()) == one
    assert not one.expired(1000.0 + LOGIN_STATE_LIFETIME)
    assert one.expired(1001.0 + LOGIN_STATE_LIFETIME)
    assert one.expired(999.0)  # started in the future: not ours


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "not base64 !",
        base64.urlsafe_b64encode(b"[1, 2]").decode(),
        base64.urlsafe_b64encode(b'{"state": "x"}').decode(),
        "A" * 4000,
    ],
)
def test_a_cookie_that_is_not_a_login_state_is_none(value: str | None) -> None:
    """Garbage, another shape, missing fields or an oversized cookie read as no login state at all."""
    assert LoginState.from_cookie(value) is None


def test_a_field_of_the_wrong_type_is_no_login_state() -> None:
    """A login state whose time is text or whose state is empty is refused whole."""
    good = LoginState.new("https://idp", "https://gw/portal/auth/callback", "/portal/", 5.0)
    raw = base64.urlsafe_b64decode(good.to_cookie()).decode()
    for bad in (raw.replace('"started_at":5.0', '"started_at":"5"'), raw.replace(good.state, "")):
        assert LoginState.from_cookie(base64.urlsafe_b64encode(bad.encode()).decode()) is None


def test_no_password_verifies_against_a_provider_users_account() -> None:
    """The password-less account of a provider's user refuses every password, at the cost of a real
    argon2 verification (so the local form does not reveal which names belong to a provider)."""
    passwords = Passwords(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))

    async def check() -> list[bool]:
        return [await passwords.verify(NO_PASSWORD, guess) for guess in ("", NO_PASSWORD, "password")]

    assert asyncio.run(check()) == [False, False, False]
