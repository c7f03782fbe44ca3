"""Which backend holds a stored response of the Responses API, and whose it is.

A model server keeps the responses it created (``store``) in its own memory: ``GET`` and ``DELETE
/v1/responses/{id}`` only work on the backend that created the response. The gateway remembers, for each
response id it saw in an answer, the user who asked, the model, and the backend's URL, and sends those
requests there; a response id it has not seen, or another user's, is a 404 (never forwarded, so one
user cannot read another's responses by guessing an id).

Two implementations of one protocol, proven equal by tests/test_response_owners_contract.py: this
process's memory (bounded, the oldest forgotten first), and Redis (``redis_response_owners``), used
whenever limits are kept in Redis, so every worker and replica finds what another relayed.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

__all__ = ["MemoryResponseOwners", "ResponseOwner", "ResponseOwners"]

_DEFAULT_CAPACITY = 100_000  # about 20 MB of ids at most: a day of a busy agent fleet's responses


@dataclass(frozen=True, slots=True)
class ResponseOwner:
    user: str
    model: str
    backend_url: str


class ResponseOwners(Protocol):
    async def remember(self, response_id: str, owner: ResponseOwner) -> None: ...

    async def find(self, response_id: str) -> ResponseOwner | None: ...

    async def forget(self, response_id: str) -> None: ...

    async def aclose(self) -> None: ...


class MemoryResponseOwners:
    def __init__(self, capacity: int = _DEFAULT_CAPACITY) -> None:
        self._capacity = capacity
        self._owners: OrderedDict[str, ResponseOwner] = OrderedDict()

    async def remember(self, response_id: str, owner: ResponseOwner) -> None:
        self._owners[response_id] = owner
        self._owners.move_to_end(response_id)
        while len(self._owners) > self._capacity:
            self._owners.popitem(last=False)

    async def find(self, response_id: str) -> ResponseOwner | None:
        return self._owners.get(response_id)

    async def forget(self, response_id: str) -> None:
        self._owners.pop(response_id, None)

    async def aclose(self) -> None:
        return None
