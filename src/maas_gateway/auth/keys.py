"""API keys held as hashes: the store interface and its in-memory implementation.

A key is never kept in plaintext. Lookups go by the SHA-256 digest of the presented key, and the
stored digest is then compared with ``hmac.compare_digest`` so the final comparison takes constant time.
SHA-256 (rather than a slow password hash) is right here: API keys are long random strings, not
guessable passwords, and the digest is computed on every request.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

__all__ = ["InMemoryKeyStore", "KeyRecord", "KeyStore", "LayeredKeyStore", "hash_key", "key_id_for"]


def hash_key(key: str) -> str:
    """The hex SHA-256 digest under which a key is stored."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_id_for(key_hash: str) -> str:
    """A short, public identifier of a key, derived from its hash (safe to log and show)."""
    return "key_" + key_hash[:12]


@dataclass(slots=True)  # per request: a frozen dataclass costs 4x as much to build
class KeyRecord:
    key_hash: str
    user: str
    tier: str
    name: str | None = None
    models: frozenset[str] | None = None
    key_id_override: str | None = None  # lifecycle keys have their own public id (key_<prefix>)
    lifecycle: bool = False  # created through the API (its tier is its owner's), not configured
    ephemeral: bool = False
    expires_at: float | None = None  # when it stops working, if ever
    team: str | None = None  # the team its usage is charged to

    @property
    def key_id(self) -> str:
        return self.key_id_override or key_id_for(self.key_hash)


class KeyStore(Protocol):
    """Where API key records live; implementations must never hold plaintext keys."""

    async def find(self, key_hash: str) -> KeyRecord | None:
        """Return the record stored under ``key_hash``, or ``None``."""
        ...


class InMemoryKeyStore:
    """Keys from the configuration file, held in a dict by digest."""

    def __init__(self, records: Iterable[KeyRecord] = ()) -> None:
        self._records: dict[str, KeyRecord] = {}
        for record in records:
            if record.key_hash in self._records:
                raise ValueError(f"The API key {record.key_id} is configured twice.")
            self._records[record.key_hash] = record

    async def find(self, key_hash: str) -> KeyRecord | None:
        record = self._records.get(key_hash)
        if record is None or not hmac.compare_digest(record.key_hash, key_hash):
            return None
        return record

    def __len__(self) -> int:
        return len(self._records)


class LayeredKeyStore:
    """Configuration-file keys first, then lifecycle keys (database or memory)."""

    def __init__(self, *stores: KeyStore) -> None:
        self._stores = stores

    async def find(self, key_hash: str) -> KeyRecord | None:
        for store in self._stores:
            record = await store.find(key_hash)
            if record is not None:
                return record
        return None
