"""Where users and lifecycle-managed API keys live: the interface and the records it deals in.

Two implementations keep the same contract (proven by ``tests/test_key_repository_contract.py``):
``memory_key_repository`` for demos and tests, ``sql_key_repository`` when ``database.url`` is set.

Every change is a targeted update of the fields it means to change, never a write-back of a whole
cached row: a stale copy held by one replica can then never undo what another replica did (a revoked key
brought back to life by a "last used" write, for example). Every change that must reach other replicas
also appends an ``IdentityChange`` in the same transaction, which they read (``changes_since``).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Literal, Protocol

__all__ = [
    "ChangeKind",
    "IdentityChange",
    "KeyPage",
    "KeyRepository",
    "StoredKey",
    "StoredUser",
    "UserChanges",
    "UserSource",
    "escape_like",
    "fold",
    "search_text",
]

UserSource = Literal["admin", "config", "oidc"]
ChangeKind = Literal["key", "user", "created"]


def fold(text: str) -> str:
    """Text compared without regard to case or Unicode normal form (``Ü`` finds ``ü`` and ``ü``)."""
    return unicodedata.normalize("NFKC", text).casefold()


def search_text(name: str, key_id: str) -> str:
    """What a key search matches: its name and its id, folded; stored beside the key."""
    return f"{fold(name)}\n{fold(key_id)}"


def escape_like(text: str) -> str:
    """``text`` as a literal inside a SQL ``LIKE`` pattern whose escape character is a backslash."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass(frozen=True, slots=True)
class StoredUser:
    """A user as the database knows them.

    ``tier`` is the tier their source gives (an administrator, the configuration file, their last
    token's groups); ``tier_override``, set by an administrator, beats every source. ``deprovisioned``
    means their source no longer knows them (a token with no mapped group): their keys stop working.
    """

    user: str
    tier: str
    display_name: str | None
    disabled: bool
    created_at: float
    source: UserSource = "admin"
    tier_override: str | None = None
    deprovisioned: bool = False
    seen_at: float | None = None


@dataclass(frozen=True, slots=True)
class UserChanges:
    """The fields one update sets; ``None`` leaves a field alone (see ``clear_tier_override``)."""

    tier: str | None = None
    tier_override: str | None = None
    clear_tier_override: bool = False
    disabled: bool | None = None
    display_name: str | None = None
    deprovisioned: bool | None = None
    seen_at: float | None = None

    def values(self) -> dict[str, object]:
        values: dict[str, object] = {}
        for name in ("tier", "tier_override", "disabled", "display_name", "deprovisioned", "seen_at"):
            value = getattr(self, name)
            if value is not None:
                values[name] = value
        if self.clear_tier_override:
            values["tier_override"] = None
        return values

    @property
    def reaches_other_replicas(self) -> bool:
        """Whether caches elsewhere must forget the user (a ``seen_at`` alone changes nothing they hold)."""
        return bool(self.values().keys() - {"seen_at", "display_name"})


@dataclass(frozen=True, slots=True)
class StoredKey:
    key_id: str
    key_hash: str
    user: str
    name: str
    models: tuple[str, ...] | None
    ephemeral: bool
    created_at: float
    expires_at: float | None
    revoked_at: float | None
    last_used_at: float | None
    team: str | None = None  # the owner's team the key's usage is charged to (teams/); None: none

    def active_at(self, now: float) -> bool:
        return (self.revoked_at is None or self.revoked_at > now) and (
            self.expires_at is None or self.expires_at > now
        )

    @property
    def ends_at(self) -> float | None:
        """When the key stops working: its expiry, or an earlier scheduled revocation (rotation grace)."""
        ends = [when for when in (self.expires_at, self.revoked_at) if when is not None]
        return min(ends) if ends else None


@dataclass(frozen=True, slots=True)
class KeyPage:
    keys: list[StoredKey]
    total: int


@dataclass(frozen=True, slots=True)
class IdentityChange:
    """Something other replicas must forget: one key (by digest), one user, or that a user got a key
    (which may have created the user, and makes digests remembered as unknown worth a new look)."""

    seq: int
    kind: ChangeKind
    subject: str  # the key digest, or the user name


class KeyRepository(Protocol):
    async def start(self) -> None: ...

    async def find_key(self, key_hash: str) -> StoredKey | None: ...

    async def get_key(self, key_id: str) -> StoredKey | None: ...

    async def create_key(self, key: StoredKey, owner: StoredUser | None = None) -> StoredUser | None:
        """Store ``key``; with ``owner``, create that user first if absent, in the same transaction.

        Returns the owner as stored (which may differ from ``owner`` when it existed already).
        """
        ...

    async def touch_key(self, key_id: str, at: float) -> None:
        """Record a use: sets ``last_used_at`` only, and only forward in time."""
        ...

    async def revoke_key(self, key_id: str, at: float) -> StoredKey | None:
        """Revoke at ``at`` unless the key is already revoked by then; return the key as stored."""
        ...

    async def list_keys(
        self,
        *,
        user: str | None,
        search: str | None,
        include_inactive: bool,
        now: float,
        offset: int,
        limit: int,
    ) -> KeyPage:
        """Keys oldest first; ``search`` matches a part of the name or id, without regard to case."""
        ...

    async def purge_keys(self, *, before: float) -> int:
        """Delete keys that expired or were revoked before ``before``, and older changes; return how many
        keys."""
        ...

    async def get_user(self, user: str) -> StoredUser | None: ...

    async def add_user(self, user: StoredUser) -> bool:
        """Create ``user`` unless a user of that name exists (atomic); ``True`` when created."""
        ...

    async def update_user(self, user: str, changes: UserChanges) -> StoredUser | None:
        """Set only the fields ``changes`` names; ``None`` when there is no such user."""
        ...

    async def list_users(self, *, offset: int, limit: int) -> tuple[list[StoredUser], int]: ...

    async def changes_since(self, seq: int) -> list[IdentityChange]:
        """Changes numbered after ``seq``, oldest first."""
        ...

    async def last_change(self) -> int:
        """The number of the newest change (0 when there is none): where a new reader starts."""
        ...

    async def aclose(self) -> None: ...
