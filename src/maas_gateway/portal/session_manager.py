"""Starting, checking and ending portal sessions: token generation, hashing and expiry from a clock.

A session ends when unused for ``idle_timeout`` or ``lifetime`` after it began, whichever comes first;
an expired session found on a request is deleted there. Use is recorded at most every tenth of the idle
timeout (and at least once a minute), so a busy page does not write to the database on every request.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from maas_gateway.portal.sessions import Session, SessionStore

__all__ = ["SessionManager", "SessionTimes", "token_digest"]


def token_digest(token: str) -> str:
    """What the store keeps of a session token: its SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class SessionTimes:
    idle_timeout: float
    lifetime: float


class SessionManager:
    def __init__(
        self,
        store: SessionStore,
        times: Callable[[], SessionTimes],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self._times = times  # read on every use: a reload changes the timeouts at once
        self._clock = clock

    async def start(self, user: str) -> tuple[str, Session]:
        """A new session for ``user``: the token for the cookie (never stored), and the session."""
        token = secrets.token_urlsafe(32)
        now = self._clock()
        session = Session(token_digest(token), user, secrets.token_urlsafe(32), now, now)
        await self.store.create(session)
        return token, session

    async def resume(self, token: str) -> Session | None:
        """The live session of ``token``, recording this use; ``None`` when unknown or expired."""
        digest = token_digest(token)
        session = await self.store.get(digest)
        if session is None:
            return None
        now = self._clock()
        times = self._times()
        if now - session.last_seen_at >= times.idle_timeout or now - session.created_at >= times.lifetime:
            await self.store.delete(digest)
            return None
        if now - session.last_seen_at >= min(60.0, times.idle_timeout / 10):
            await self.store.touch(digest, now)
        return session

    async def end(self, token: str) -> None:
        await self.store.delete(token_digest(token))

    async def end_all(self, user: str) -> int:
        return await self.store.delete_user(user)

    async def purge(self) -> int:
        """Delete every expired session (a background task calls this now and then)."""
        now = self._clock()
        times = self._times()
        return await self.store.purge(
            idle_before=now - times.idle_timeout, created_before=now - times.lifetime
        )
