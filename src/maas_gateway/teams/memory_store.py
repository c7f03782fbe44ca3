"""Teams held in the process, for demos and tests (lost at exit)."""

from __future__ import annotations

from maas_gateway.teams.store import Team

__all__ = ["InMemoryTeamStore"]


class InMemoryTeamStore:
    def __init__(self) -> None:
        self._teams: dict[str, Team] = {}
        self._members: dict[str, set[str]] = {}

    async def create(self, team: Team) -> bool:
        if team.name in self._teams:
            return False
        self._teams[team.name] = team
        self._members[team.name] = set()
        return True

    async def get(self, name: str) -> Team | None:
        return self._teams.get(name)

    async def all(self) -> list[Team]:
        return [self._teams[name] for name in sorted(self._teams)]

    async def delete(self, name: str) -> bool:
        self._members.pop(name, None)
        return self._teams.pop(name, None) is not None

    async def add_member(self, team: str, user: str) -> bool:
        members = self._members.get(team)
        if members is None:
            raise KeyError(f"There is no team '{team}'.")
        if user in members:
            return False
        members.add(user)
        return True

    async def remove_member(self, team: str, user: str) -> bool:
        members = self._members.get(team, set())
        if user not in members:
            return False
        members.discard(user)
        return True

    async def members(self, team: str) -> list[str]:
        return sorted(self._members.get(team, ()))

    async def teams_of(self, user: str) -> list[str]:
        return sorted(name for name, members in self._members.items() if user in members)
