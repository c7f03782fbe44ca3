"""Password hashing with argon2id (argon2-cffi), off the event loop and bounded in memory.

Parameters are argon2-cffi's defaults, RFC 9106's second recommended profile (t=3, m=64 MiB, p=4; see
docs/decisions.md). Hashing is deliberately slow, so it runs in a worker thread, and at most
``concurrency`` hashes run at once so that a burst of sign-ins cannot take 64 MiB each without bound.
A sign-in for an account that does not exist is checked against a dummy hash, so both answers take
the same time and reveal nothing about which names exist.
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = ["MIN_PASSWORD_LENGTH", "Passwords", "password_problem"]

MIN_PASSWORD_LENGTH = 8
_MAX_PASSWORD_LENGTH = 1024  # longer input only costs hashing time; no real password is this long


def password_problem(password: str) -> str | None:
    """Why ``password`` cannot be used, as a sentence; ``None`` when it can."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"A password must be at least {MIN_PASSWORD_LENGTH} characters long."
    if len(password) > _MAX_PASSWORD_LENGTH:
        return f"A password must be at most {_MAX_PASSWORD_LENGTH} characters long."
    return None


class Passwords:
    def __init__(self, hasher: PasswordHasher | None = None, concurrency: int = 2) -> None:
        self.hasher = hasher or PasswordHasher(type=Type.ID)
        self._slots = asyncio.Semaphore(concurrency)
        self._dummy: str | None = None

    def hash_now(self, password: str) -> str:
        """Hash in the calling thread (the CLI, start-up seeding)."""
        return self.hasher.hash(password)

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(self.hasher.hash, password)

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        """Whether ``password`` matches ``stored_hash``; ``None`` (no account) costs the same and fails."""
        if len(password) > _MAX_PASSWORD_LENGTH:
            return False
        if self._dummy is None:
            self._dummy = await self.hash("not a password: equalises the time of unknown names")
        # An account without a password (an identity provider's user) costs the same as any other.
        usable = stored_hash is not None and stored_hash.startswith("$argon2")
        target = stored_hash if usable and stored_hash is not None else self._dummy
        async with self._slots:
            matched = await asyncio.to_thread(self._verify, target, password)
        return matched and usable

    def _verify(self, stored_hash: str, password: str) -> bool:
        try:
            return self.hasher.verify(stored_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        """Whether the hash was made with other parameters than the current ones (then rehash on sign-in)."""
        try:
            return self.hasher.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return True
