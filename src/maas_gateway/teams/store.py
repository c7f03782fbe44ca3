"""What a team is, and the interface every team store keeps (``tests/test_team_store_contract.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["TEAM_NAME", "Team", "TeamStore"]

# A team's name shows up in counter keys, rollups and CSV reports: letters, digits and a few separators.
TEAM_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"


@dataclass(frozen=True, slots=True)
class Team:
    name: str
    display_name: str | None
    created_at: float


class TeamStore(Protocol):
    async def create(self, team: Team) -> bool:
        """Store a new team; ``False`` (nothing changed) when one of that name exists."""
        ...

    async def get(self, name: str) -> Team | None: ...

    async def all(self) -> list[Team]:
        """Every team, by name."""
        ...

    async def delete(self, name: str) -> bool:
        """Remove a team and its memberships; ``False`` when there was none."""
        ...

    async def add_member(self, team: str, user: str) -> bool:
        """Make ``user`` a member; ``False`` when they were one already. The team must exist."""
        ...

    async def remove_member(self, team: str, user: str) -> bool:
        """``False`` when the user was not a member."""
        ...

    async def members(self, team: str) -> list[str]:
        """The team's users, by name."""
        ...

    async def teams_of(self, user: str) -> list[str]:
        """The teams ``user`` belongs to, by name."""
        ...
