"""The users table as seen from the request path: cached lookups, and what tokens teach about their users.

A lookup is trusted for ``ttl`` seconds (absent users too); ``forget`` drops one at once, and the change
watcher calls it whenever another replica changed a user. While the database cannot be reached, a cached
row is used however old it is, and a user never seen is treated as having no row, so configuration-file
keys and tokens keep working through an outage (logged once when it starts and once when it ends).

Tokens keep their users' rows current: a user seen for the first time gets a row (so administrators can
list, move and disable them); a change of groups updates the row's tier, or marks the user de-provisioned
when no group maps to a tier any more, so keys they created follow (see ``UserPolicy``). These writes run
in the background and set only those fields.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Coroutine
from typing import Any

from maas_gateway.auth.key_repository import KeyRepository, StoredUser, UserChanges

__all__ = ["UserDirectory"]

logger = logging.getLogger("maas_gateway.users")

_USERS_KEPT = 100_000
_RETRY_AFTER = 1.0  # seconds between two tries of an unreachable users table
_SEEN_EVERY = 600.0  # seconds between two records of a token user's "seen" time


class UserDirectory:
    def __init__(self, repository: KeyRepository, ttl: float) -> None:
        self._repository = repository
        self._ttl = ttl
        self._cache: OrderedDict[str, tuple[float, StoredUser | None]] = OrderedDict()
        self._writing: set[str] = set()
        self._background: set[asyncio.Task[None]] = set()
        self._unreachable = False
        self._retry_at = 0.0

    def fresh(self, user: str, now: float) -> tuple[bool, StoredUser | None]:
        """The cached row within the TTL, without a coroutine: ``(True, row)``; else ``(False, None)``.

        The request path asks this first; an ``await`` costs about a microsecond even when nothing waits.
        """
        cached = self._cache.get(user)
        if cached is not None and now - cached[0] < self._ttl:
            return True, cached[1]
        return False, None

    async def get(self, user: str, now: float) -> StoredUser | None:
        cached = self._cache.get(user)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        if now < self._retry_at:
            return cached[1] if cached is not None else None
        try:
            stored = await self._repository.get_user(user)
        except Exception as exc:  # noqa: BLE001  # any database failure: serve what is known, see above
            self._retry_at = now + _RETRY_AFTER
            self._outage(exc)
            return cached[1] if cached is not None else None
        if self._unreachable:
            self._unreachable = False
            logger.warning("The users table can be read again.")
        self._remember(user, stored, now)
        return stored

    def _remember(self, user: str, stored: StoredUser | None, now: float) -> None:
        self._cache[user] = (now, stored)
        self._cache.move_to_end(user)
        while len(self._cache) > _USERS_KEPT:
            self._cache.popitem(last=False)

    def _outage(self, exc: Exception) -> None:
        if not self._unreachable:
            self._unreachable = True
            logger.error(
                "The users table cannot be read (%s); cached users are served until it can.",
                type(exc).__name__,
            )

    def forget(self, user: str | None = None) -> None:
        """Forget one user, or everyone (``None``)."""
        if user is None:
            self._cache.clear()
        else:
            self._cache.pop(user, None)

    def observe_token(
        self, user: str, groups_tier: str, display_name: str | None, stored: StoredUser | None, now: float
    ) -> None:
        """Bring the row of a token's user up to date with the token, in the background, if it differs."""
        if user in self._writing:
            return
        work = self._token_write(user, groups_tier, display_name, stored, now)
        if work is not None:
            self._spawn(user, work)

    async def record_token(
        self, user: str, groups_tier: str, display_name: str | None, stored: StoredUser | None, now: float
    ) -> None:
        """``observe_token``, awaited: the portal's sign-in needs the row in place before its session."""
        work = self._token_write(user, groups_tier, display_name, stored, now)
        if work is not None:
            await work
            self.forget(user)

    def _token_write(
        self, user: str, groups_tier: str, display_name: str | None, stored: StoredUser | None, now: float
    ) -> Coroutine[Any, Any, None] | None:
        """The write that brings ``user``'s row in line with a token, or ``None`` when there is none to do."""
        if stored is None:
            row = StoredUser(user, groups_tier, display_name, False, now, "oidc", None, not groups_tier, now)
            return self._create(row)
        if stored.source != "oidc":
            return (
                None  # mapped onto an administrator's or the configuration's user on purpose: theirs to set
            )
        changes = UserChanges(
            tier=groups_tier if groups_tier and groups_tier != stored.tier else None,
            deprovisioned=(not groups_tier) if (not groups_tier) != stored.deprovisioned else None,
            seen_at=now if stored.seen_at is None or now - stored.seen_at > _SEEN_EVERY else None,
        )
        return self._update(user, changes) if changes.values() else None

    def _spawn(self, user: str, work: Coroutine[Any, Any, None]) -> None:
        self._writing.add(user)
        task = asyncio.create_task(work)
        self._background.add(task)

        def done(finished: asyncio.Task[None]) -> None:
            self._background.discard(finished)
            self._writing.discard(user)
            self.forget(user)

        task.add_done_callback(done)

    async def _create(self, row: StoredUser) -> None:
        try:
            await self._repository.add_user(row)
        except Exception as exc:  # noqa: BLE001  # a background write must never fail a request
            self._outage(exc)

    async def _update(self, user: str, changes: UserChanges) -> None:
        try:
            await self._repository.update_user(user, changes)
        except Exception as exc:  # noqa: BLE001  # a background write must never fail a request
            self._outage(exc)

    async def drain(self) -> None:
        """Wait for background writes (at shutdown)."""
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
