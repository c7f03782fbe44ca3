"""The API key service's rules in time, with an injected clock and the in-memory repository: expiry,
rotation grace, how long a replica trusts a cached lookup, and serving through a key-store outage.

The end-to-end tests (tests/test_keys.py) keep one key expiring in a running gateway; the cases here
would each cost seconds of wall-clock waiting there.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import pytest

from maas_gateway.auth.key_repository import StoredKey, StoredUser
from maas_gateway.auth.key_service import KeyService
from maas_gateway.auth.keys import hash_key
from maas_gateway.auth.memory_key_repository import InMemoryKeyRepository
from maas_gateway.config.schema import KeySettings
from maas_gateway.errors import AuthenticationError, ServiceUnavailableError
from tests.support.clock import FakeClock


class _FlakyRepository(InMemoryKeyRepository):
    """The in-memory store, which can be made unreachable; counts the key lookups that reach it."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.lookups = 0

    async def find_key(self, key_hash: str) -> StoredKey | None:
        self.lookups += 1
        if self.down:
            raise ConnectionRefusedError("the key store is down")
        return await super().find_key(key_hash)


Scenario = Callable[[_FlakyRepository, FakeClock], Awaitable[None]]


def _run(scenario: Scenario) -> None:
    async def main() -> None:
        repository = _FlakyRepository()
        await repository.add_user(StoredUser("alice", "free", None, False, 0.0))
        await scenario(repository, FakeClock())

    asyncio.run(main())


async def _refusal(service: KeyService, plaintext: str) -> AuthenticationError:
    with pytest.raises(AuthenticationError) as refused:
        await service.find(hash_key(plaintext))
    return refused.value


def test_a_key_works_until_its_expiry_and_is_then_refused_as_expired() -> None:
    """A key lives exactly its lifetime, cached or not; then it is 401 `expired_api_key`, saying so."""

    async def scenario(repository: _FlakyRepository, clock: FakeClock) -> None:
        service = KeyService(repository, KeySettings(cache_ttl=2.0), clock=clock)
        plaintext, _ = await service.create("alice", name="k", lifetime=60)
        assert await service.find(hash_key(plaintext)) is not None
        clock.advance(59.9)
        assert await service.find(hash_key(plaintext)) is not None
        clock.advance(0.1)
        expired = await _refusal(service, plaintext)
        assert (expired.code, expired.message) == ("expired_api_key", "The API key has expired.")

    _run(scenario)


def test_rotation_keeps_the_old_key_for_the_grace_period_only() -> None:
    """After rotation both keys work during the grace period; from its end the old one is 401
    `revoked_api_key` and the new one keeps working, with the old one's remaining lifetime."""

    async def scenario(repository: _FlakyRepository, clock: FakeClock) -> None:
        service = KeyService(repository, KeySettings(cache_ttl=2.0), clock=clock)
        old_plaintext, old = await service.create("alice", name="k", lifetime=3600)
        clock.advance(600)
        new_plaintext, new, retired = await service.rotate(old, grace=30)
        assert (retired.revoked_at, new.expires_at) == (clock.now + 30, old.expires_at)
        for _ in range(2):
            assert await service.find(hash_key(old_plaintext)) is not None
            assert await service.find(hash_key(new_plaintext)) is not None
            clock.advance(14.9)
        clock.advance(0.2)
        assert (await _refusal(service, old_plaintext)).code == "revoked_api_key"
        assert await service.find(hash_key(new_plaintext)) is not None

    _run(scenario)


def test_a_revocation_on_another_replica_is_seen_within_the_cache_ttl() -> None:
    """Two replicas on one store: a key revoked through the first is refused there at once, and by the
    second, which still caches it, once its lookup is `cache_ttl` old (the safety net under the change
    log, which usually tells it sooner)."""

    async def scenario(repository: _FlakyRepository, clock: FakeClock) -> None:
        first = KeyService(repository, KeySettings(cache_ttl=2.0), clock=clock)
        second = KeyService(repository, KeySettings(cache_ttl=2.0), clock=clock)
        plaintext, key = await first.create("alice", name="k", lifetime=3600)
        assert await first.find(hash_key(plaintext)) is not None
        assert await second.find(hash_key(plaintext)) is not None
        clock.advance(1.0)
        await first.revoke(key.key_id, owner=None)
        assert (await _refusal(first, plaintext)).code == "revoked_api_key"
        clock.advance(0.9)
        assert await second.find(hash_key(plaintext)) is not None, "trusted while its lookup is fresh"
        clock.advance(0.1)
        assert (await _refusal(second, plaintext)).code == "revoked_api_key"

    _run(scenario)


def test_an_outage_serves_recent_lookups_for_the_grace_and_tries_the_store_once_a_second(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With the key store down, a key looked up within `outage_grace` keeps working past `cache_ttl`, a
    revoked one stays refused, a digest known to be unknown stays unknown, and a key never looked up is a
    503 `identity_unavailable`; past the grace the known key is a 503 too. The store is tried at most once
    a second, not once per request, and the outage and its end are logged once each."""
    caplog.set_level(logging.WARNING, "maas_gateway.keys")

    async def scenario(repository: _FlakyRepository, clock: FakeClock) -> None:
        settings = KeySettings(cache_ttl=2.0, outage_grace=60.0)
        service = KeyService(repository, settings, clock=clock)
        known, _ = await service.create("alice", name="known", lifetime=3600)
        revoked, revoked_key = await service.create("alice", name="revoked", lifetime=3600)
        never_seen, _ = await service.create("alice", name="never seen", lifetime=3600)
        await service.revoke(revoked_key.key_id, owner=None)
        assert await service.find(hash_key(known)) is not None
        assert (await _refusal(service, revoked)).code == "revoked_api_key"
        assert await service.find("0" * 64) is None
        repository.down = True
        lookups = repository.lookups
        for _ in range(10):  # ten seconds of requests, ten of each a second
            clock.advance(1.0)
            for _ in range(10):
                assert await service.find(hash_key(known)) is not None
                assert (await _refusal(service, revoked)).code == "revoked_api_key"
                assert await service.find("0" * 64) is None
                with pytest.raises(ServiceUnavailableError) as unavailable:
                    await service.find(hash_key(never_seen))
                assert unavailable.value.code == "identity_unavailable"
        assert repository.lookups - lookups == 10, "one try of the store a second"
        clock.advance(50.0)
        with pytest.raises(ServiceUnavailableError):
            await service.find(hash_key(known))
        repository.down = False
        clock.advance(1.0)
        assert await service.find(hash_key(known)) is not None
        assert await service.find(hash_key(never_seen)) is not None
        assert [record.getMessage() for record in caplog.records] == [
            "The key store cannot be read (ConnectionRefusedError); keys looked up in the last 1m are "
            "served from the cache until it can.",
            "The key store can be read again.",
        ]

    _run(scenario)
