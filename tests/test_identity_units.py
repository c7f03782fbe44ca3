"""The identity policy units with injected clocks: tier decisions, key grants, the negative cache, and
reading the change log when numbers become visible out of order."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from maas_gateway.auth.change_watcher import IdentityChangeWatcher
from maas_gateway.auth.key_policy import Creator, grant_key, may_rotate
from maas_gateway.auth.key_repository import IdentityChange, StoredKey, StoredUser, UserSource
from maas_gateway.auth.key_service import KeyService
from maas_gateway.auth.memory_key_repository import InMemoryKeyRepository
from maas_gateway.auth.user_policy import UserPolicy
from maas_gateway.config.schema import KeySettings
from maas_gateway.errors import AuthenticationError, PermissionDeniedError


class _CountingRepository(InMemoryKeyRepository):
    """Counts key lookups, to see which ones reach the store."""

    def __init__(self) -> None:
        super().__init__()
        self.lookups = 0

    async def find_key(self, key_hash: str) -> StoredKey | None:
        self.lookups += 1
        return await super().find_key(key_hash)


def test_unknown_keys_are_looked_up_once_per_ttl_and_forgotten_on_creation() -> None:
    """A random key costs one store lookup per TTL, not one per request; creating a key forgets it."""
    now = [1000.0]
    repository = _CountingRepository()
    service = KeyService(repository, KeySettings(cache_ttl=2.0), clock=lambda: now[0])

    async def scenario() -> None:
        for _ in range(100):
            assert await service.find("0" * 64) is None
        assert repository.lookups == 1
        now[0] += 2.5
        assert await service.find("0" * 64) is None
        assert repository.lookups == 2
        await repository.add_user(StoredUser("alice", "free", None, False, 0.0))
        await service.create("alice", name="k", lifetime=60)
        assert await service.find("0" * 64) is None
        assert repository.lookups == 3

    asyncio.run(scenario())


def _owner(source: UserSource, **fields: Any) -> StoredUser:
    name = "idp:ann" if source == "oidc" else "ann"
    values: dict[str, Any] = {"display_name": None, "disabled": False, "created_at": 0.0, **fields}
    return StoredUser(name, "premium", source=source, **values)


def test_tier_comes_from_override_then_file_then_source() -> None:
    """An administrator's override beats the file's, which beats the credential's source."""
    policy = UserPolicy(configured_tiers={"ann": "free"}, overrides={"ann": "premium"})
    assert policy.tier("ann", "config_key", "free", None, 0) == "premium"
    assert (
        policy.tier("ann", "config_key", "free", _owner("config", tier_override="enterprise"), 0)
        == "enterprise"
    )
    assert UserPolicy().tier("bob", "config_key", "free", None, 0) == "free"
    with pytest.raises(AuthenticationError, match="disabled"):
        policy.tier("ann", "config_key", "free", _owner("config", disabled=True), 0)


def test_keys_of_a_deprovisioned_owner_stop() -> None:
    """A key's owner who left the configuration file, or whose groups map to no tier, has keys that stop;
    an owner who has not signed in within the revalidation window must sign in again."""
    with pytest.raises(PermissionDeniedError) as gone:
        UserPolicy().tier("ann", "key", "", _owner("config"), 0)
    assert gone.value.code == "user_deprovisioned"
    assert UserPolicy(configured_tiers={"ann": "free"}).tier("ann", "key", "", _owner("config"), 0) == "free"
    with pytest.raises(PermissionDeniedError):
        UserPolicy().tier("idp:ann", "key", "", _owner("oidc", deprovisioned=True), 0)
    window = UserPolicy(revalidation={"idp": 3600.0})
    assert window.tier("idp:ann", "key", "", _owner("oidc", seen_at=1000.0), 2000.0) == "premium"
    with pytest.raises(AuthenticationError) as stale:
        window.tier("idp:ann", "key", "", _owner("oidc", seen_at=1000.0), 5000.0)
    assert stale.value.code == "owner_revalidation_required"


def test_grants_never_exceed_the_creator() -> None:
    """Models are the creator's (within the tier) by default, never more; expiry is capped by the
    creator's when not asked for, refused when asked for beyond it."""
    creator = Creator(ephemeral=False, models=frozenset({"a", "b"}), expires_at=1100.0)
    grant = grant_key(
        creator,
        lifetime=86400,
        requested_lifetime=False,
        models=None,
        tier="t",
        tier_models=["a", "c"],
        now=1000,
    )
    assert (grant.models, grant.lifetime, grant.ends_by) == (("a",), 100.0, 1100.0)
    with pytest.raises(PermissionDeniedError, match="outlive"):
        grant_key(
            creator, lifetime=200, requested_lifetime=True, models=None, tier="t", tier_models=["a"], now=1000
        )
    with pytest.raises(PermissionDeniedError, match="tier"):
        grant_key(
            creator, lifetime=10, requested_lifetime=True, models=["b"], tier="t", tier_models=["a"], now=1000
        )
    with pytest.raises(PermissionDeniedError):
        may_rotate(creator, key_models=None, key_ends_at=1050.0)
    may_rotate(creator, key_models=("a",), key_ends_at=1050.0)


class _ChangeLog(InMemoryKeyRepository):
    """A change log whose rows become visible in the order the test says, like PostgreSQL commits."""

    def __init__(self) -> None:
        super().__init__()
        self.visible: list[IdentityChange] = []

    async def changes_since(self, seq: int) -> list[IdentityChange]:
        return sorted((c for c in self.visible if c.seq > seq), key=lambda c: c.seq)

    async def last_change(self) -> int:
        return max((c.seq for c in self.visible), default=0)


def test_a_change_committed_after_a_higher_numbered_one_is_still_read() -> None:
    """Number 2 visible before number 1: 1 is read when it appears, each change is applied once, and a
    number that never appears (rolled back) is given up after a few seconds."""
    log = _ChangeLog()
    applied: list[int] = []
    now = [0.0]
    watcher = IdentityChangeWatcher(
        log, lambda c: applied.append(c.seq), poll_interval=1, clock=lambda: now[0]
    )

    async def scenario() -> None:
        await watcher.read_once()  # starts from the newest: nothing yet
        log.visible.append(IdentityChange(2, "key", "b"))
        await watcher.read_once()
        log.visible.append(IdentityChange(1, "key", "a"))
        await watcher.read_once()
        await watcher.read_once()
        log.visible.append(IdentityChange(4, "user", "c"))  # 3 never commits
        await watcher.read_once()
        now[0] += 10
        await watcher.read_once()
        log.visible.append(IdentityChange(5, "user", "d"))
        await watcher.read_once()

    asyncio.run(scenario())
    assert applied == [2, 1, 4, 5]
