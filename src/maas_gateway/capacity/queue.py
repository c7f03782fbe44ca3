"""The line of requests waiting for one model in one process: by tier, then round robin between users.

A request of a better rank is always offered a slot first. Within a rank each user has a first-come line
of their own, and the users take turns: a user served goes to the back, so one user's 500 waiting
requests take one turn in each round, not the first 500 (deficit round robin with equal shares, as
network schedulers share a link between flows). When the line is full, a newcomer may take the place of
the newest request of the user with the most waiting in the worst rank: always if the newcomer's rank is
better, and within that rank if its user has fewer waiting; so a full line is shared fairly too.

Pure bookkeeping: no I/O, no clock; the gate decides when to offer slots.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Collection, Hashable
from typing import Generic, TypeVar

__all__ = ["FairQueue"]

T = TypeVar("T", bound=Hashable)


class FairQueue(Generic[T]):
    def __init__(self) -> None:
        self._ranks: dict[int, OrderedDict[str, deque[T]]] = {}
        self._where: dict[T, tuple[int, str]] = {}

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, item: T) -> bool:
        return item in self._where

    def push(self, item: T, rank: int, user: str) -> None:
        self._ranks.setdefault(rank, OrderedDict()).setdefault(user, deque()).append(item)
        self._where[item] = (rank, user)

    def waiting_at_or_above(self, rank: int) -> bool:
        """Whether anyone of ``rank`` or a better one waits (a newcomer of ``rank`` then waits too)."""
        return any(r <= rank for r in self._ranks)

    def candidates(self) -> list[T]:
        """The first request of each user, in the order they are to be offered a slot."""
        return [line[0] for rank in sorted(self._ranks) for line in self._ranks[rank].values()]

    def next(self, skip_users: Collection[str] = (), skip_ranks: Collection[int] = ()) -> T | None:
        """The request to offer a slot to now, passing over users and ranks that cannot take one."""
        for rank in sorted(self._ranks):
            if rank in skip_ranks:
                continue
            for user, line in self._ranks[rank].items():
                if user not in skip_users:
                    return line[0]
        return None

    def served(self, item: T) -> None:
        """``item`` got its slot: it leaves, and its user goes to the back of its rank's turns."""
        rank, user = self._where.pop(item)
        users = self._ranks[rank]
        line = users[user]
        line.remove(item)
        if line:
            users.move_to_end(user)
        else:
            self._forget(rank, user)

    def remove(self, item: T) -> bool:
        """Take ``item`` out without serving it (it gave up, or was shed); its user keeps their turn."""
        where = self._where.pop(item, None)
        if where is None:
            return False
        rank, user = where
        line = self._ranks[rank][user]
        line.remove(item)
        if not line:
            self._forget(rank, user)
        return True

    def victim(self, rank: int, user: str) -> T | None:
        """Whom a newcomer of ``rank`` and ``user`` may replace in a full line, or ``None``."""
        if not self._ranks:
            return None
        worst = max(self._ranks)
        if rank > worst:
            return None
        users = self._ranks[worst]
        heaviest = max(users.values(), key=len)
        if rank == worst and len(users.get(user, ())) + 1 >= len(heaviest):
            return None  # the newcomer's user would be as heavy as the heaviest: nothing fairer to do
        return heaviest[-1]

    def depth(self) -> dict[int, int]:
        """Requests waiting per rank."""
        return {rank: sum(map(len, users.values())) for rank, users in self._ranks.items()}

    def _forget(self, rank: int, user: str) -> None:
        users = self._ranks[rank]
        del users[user]
        if not users:
            del self._ranks[rank]
