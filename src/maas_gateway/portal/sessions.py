"""Server-side portal sessions: the interface, the record, and the in-memory implementation.

The browser holds a random token; the store keeps only its SHA-256, so a copy of the database signs no one
in. Each session carries its own CSRF token. Expiry (idle and absolute) is decided by ``SessionManager``
from an injected clock; stores only keep times. The SQL implementation is ``sql_sessions``; both keep the
contract of ``tests/test_portal_store_contract.py``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Protocol

__all__ = ["InMemorySessionStore", "Session", "SessionStore"]


@dataclass(frozen=True, slots=True)
class Session:
    token_hash: str
    user: str
    csrf_token: str
    created_at: float
    last_seen_at: float


class SessionStore(Protocol):
    async def create(self, session: Session) -> None: ...

    async def get(self, token_hash: str) -> Session | None: ...

    async def touch(self, token_hash: str, at: float) -> None:
        """Record a use: moves ``last_seen_at`` forward only."""
        ...

    async def delete(self, token_hash: str) -> bool: ...

    async def delete_user(self, user: str) -> int:
        """End every session of ``user``; return how many."""
        ...

    async def purge(self, *, idle_before: float, created_before: float) -> int:
        """Delete sessions last seen before ``idle_before`` or created before ``created_before``."""
        ...


class InMemorySessionStore:
    def __init__(self) -> None:
        self._sessions: dict[str, Session] = {}

    async def create(self, session: Session) -> None:
        self._sessions[session.token_hash] = session

    async def get(self, token_hash: str) -> Session | None:
        return self._sessions.get(token_hash)

    async def touch(self, token_hash: str, at: float) -> None:
        session = self._sessions.get(token_hash)
        if session is not None and at > session.last_seen_at:
            self._sessions[token_hash] = dataclasses.replace(session, last_seen_at=at)

    async def delete(self, token_hash: str) -> bool:
        return self._sessions.pop(token_hash, None) is not None

    async def delete_user(self, user: str) -> int:
        ended = [digest for digest, session in self._sessions.items() if session.user == user]
        for digest in ended:
            del self._sessions[digest]
        return len(ended)

    async def purge(self, *, idle_before: float, created_before: float) -> int:
        ended = [
            digest
            for digest, session in self._sessions.items()
            if session.last_seen_at < idle_before or session.created_at < created_before
        ]
        for digest in ended:
            del self._sessions[digest]
        return len(ended)
