"""Portal sessions and passwords as units: expiry from an injected clock, tokens stored only as digests,
argon2id hashes that verify in constant time and are replaced when the parameters change."""

from __future__ import annotations

import asyncio

import pytest
from argon2 import PasswordHasher, Type

from maas_gateway.auth.memory_key_repository import InMemoryKeyRepository
from maas_gateway.portal.account_service import AccountService
from maas_gateway.portal.memory_accounts import InMemoryAccountStore
from maas_gateway.portal.passwords import Passwords
from maas_gateway.portal.session_manager import SessionManager, SessionTimes, token_digest
from maas_gateway.portal.sessions import InMemorySessionStore
from tests.support.clock import FakeClock

_CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1, type=Type.ID)


def _manager(clock: FakeClock, idle: float = 60.0, lifetime: float = 600.0) -> SessionManager:
    return SessionManager(InMemorySessionStore(), lambda: SessionTimes(idle, lifetime), clock)


def test_a_session_token_is_stored_only_as_its_digest() -> None:
    """The store knows the SHA-256 of the token, never the token; each session has its own CSRF token."""

    async def main() -> None:
        manager = _manager(FakeClock())
        token, session = await manager.start("dev1")
        _, other = await manager.start("dev1")
        assert session.token_hash == token_digest(token) != token
        assert session.csrf_token != other.csrf_token
        assert await manager.store.get(token) is None
        assert await manager.resume(token) == session

    asyncio.run(main())


def test_an_idle_session_expires_and_use_keeps_it_alive() -> None:
    """Used every 50 s, a session with a 60 s idle timeout stays; 60 s unused, it is gone and deleted."""

    async def main() -> None:
        clock = FakeClock()
        manager = _manager(clock)
        token, session = await manager.start("dev1")
        for _ in range(5):
            clock.advance(50)
            assert await manager.resume(token) is not None
        clock.advance(60)
        assert await manager.resume(token) is None
        assert await manager.store.get(session.token_hash) is None

    asyncio.run(main())


def test_a_session_ends_at_its_absolute_lifetime_however_much_it_is_used() -> None:
    """Busy use does not extend a session past its lifetime."""

    async def main() -> None:
        clock = FakeClock()
        manager = _manager(clock, idle=60.0, lifetime=120.0)
        token, _ = await manager.start("dev1")
        clock.advance(59)
        assert await manager.resume(token) is not None
        clock.advance(59)
        assert await manager.resume(token) is not None
        clock.advance(2)
        assert await manager.resume(token) is None

    asyncio.run(main())


def test_sign_out_and_end_all_stop_the_tokens() -> None:
    """A signed-out token is refused; ending a user's sessions refuses all of theirs."""

    async def main() -> None:
        manager = _manager(FakeClock())
        first, _ = await manager.start("dev1")
        second, _ = await manager.start("dev1")
        await manager.end(first)
        assert await manager.resume(first) is None
        assert await manager.end_all("dev1") == 1
        assert await manager.resume(second) is None

    asyncio.run(main())


def test_purge_deletes_expired_sessions_only() -> None:
    """The background purge removes what resume would refuse, and nothing else."""

    async def main() -> None:
        clock = FakeClock()
        manager = _manager(clock)
        await manager.start("old")
        clock.advance(61)
        fresh, _ = await manager.start("new")
        assert await manager.purge() == 1
        assert await manager.resume(fresh) is not None

    asyncio.run(main())


def test_passwords_verify_and_unknown_accounts_fail_the_same_way() -> None:
    """The right password matches; a wrong one and an unknown account (no hash) both fail."""

    async def main() -> None:
        passwords = Passwords(_CHEAP)
        stored = await passwords.hash("openshift")
        assert stored.startswith("$argon2id$")
        assert await passwords.verify(stored, "openshift")
        assert not await passwords.verify(stored, "openshift!")
        assert not await passwords.verify(None, "openshift")
        assert not await passwords.verify("not a hash", "openshift")

    asyncio.run(main())


def test_a_hash_with_old_parameters_is_replaced_at_the_next_sign_in() -> None:
    """After the parameters change, a successful sign-in stores a hash with the new ones; a failure not."""

    async def main() -> None:
        users = InMemoryKeyRepository()
        store = InMemoryAccountStore(users)
        old = AccountService(store, Passwords(_CHEAP), FakeClock())
        assert await old.create("dev1", "openshift", tier="free")
        stronger = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1, type=Type.ID)
        new = AccountService(store, Passwords(stronger), FakeClock())
        before = await store.get("dev1")
        assert before is not None
        assert new.passwords.needs_rehash(before.password_hash)
        assert await new.check_password("dev1", "wrong password") is None
        assert await store.get("dev1") == before
        assert await new.check_password("dev1", "openshift") is not None
        after = await store.get("dev1")
        assert after is not None
        assert not new.passwords.needs_rehash(after.password_hash)
        assert await new.check_password("dev1", "openshift") is not None

    asyncio.run(main())


def test_a_short_password_is_refused_with_a_sentence() -> None:
    """Account creation refuses a password under eight characters and stores nothing."""

    async def main() -> None:
        store = InMemoryAccountStore(InMemoryKeyRepository())
        service = AccountService(store, Passwords(_CHEAP))
        with pytest.raises(ValueError, match="at least 8 characters"):
            await service.create("dev1", "short", tier="free")
        assert await store.get("dev1") is None

    asyncio.run(main())
