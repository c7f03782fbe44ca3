"""Teams as an administrator changes them: create, delete, add and remove members, each change audited.

Part of ``AdminActions`` (``actions.teams``), so the admin API, the CLI (through the API) and the portal
share one implementation and one audit entry per change. A key's team is checked here too: its owner
must be a member, and stays one: a member who leaves a team loses their keys for it (revoked with the
membership), so a team's budget never pays for someone outside it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from maas_gateway.audit.entries import Actor
from maas_gateway.errors import ConflictError, InvalidRequestError, NotFoundError
from maas_gateway.teams import TEAM_NAME, Team, TeamStore

__all__ = ["TeamActions"]

_NAME = re.compile(TEAM_NAME)
Record = Callable[[Actor, str, str, dict[str, Any]], Awaitable[None]]
RevokeTeamKeys = Callable[[Actor, str, str], Awaitable[list[str]]]
"""Revoke a user's active keys for a team (each audited); the ids revoked."""


async def _no_keys(actor: Actor, user: str, team: str) -> list[str]:
    return []


class TeamActions:
    def __init__(
        self,
        store: TeamStore,
        record: Record,
        clock: Callable[[], float] = time.time,
        revoke_keys: RevokeTeamKeys = _no_keys,
    ) -> None:
        self.store = store
        self._record = record
        self._clock = clock
        self._revoke_keys = revoke_keys

    async def find(self, name: str) -> Team:
        team = await self.store.get(name)
        if team is None:
            raise NotFoundError(f"There is no team '{name}'.", code="team_not_found")
        return team

    async def create(self, actor: Actor, name: str, display_name: str | None) -> Team:
        if not _NAME.match(name):
            raise InvalidRequestError(
                "`name`: A team's name is 1 to 100 letters, digits, '.', '_' or '-', starting with a letter "
                "or digit.",
                param="name",
            )
        team = Team(name, display_name, self._clock())
        if not await self.store.create(team):
            raise ConflictError(f"The team '{name}' already exists.")
        await self._record(actor, "team.create", name, {"display_name": display_name})
        return team

    async def delete(self, actor: Actor, name: str) -> None:
        """Delete a team and its memberships, and revoke its members' keys for it (as if each left it):
        a team created later under the same name starts with no one's old keys. Usage already charged
        keeps the name, so reports still show where the money went."""
        members = await self.store.members(name)
        if not await self.store.delete(name):
            raise NotFoundError(f"There is no team '{name}'.", code="team_not_found")
        revoked = [key for user in members for key in await self._revoke_keys(actor, user, name)]
        await self._record(actor, "team.delete", name, {"members": members, "revoked_keys": revoked})

    async def add_member(self, actor: Actor, name: str, user: str) -> list[str]:
        await self.find(name)
        try:
            added = await self.store.add_member(name, user)
        except KeyError:  # deleted meanwhile
            raise NotFoundError(f"There is no team '{name}'.", code="team_not_found") from None
        if not added:
            raise ConflictError(f"The user '{user}' is a member of the team '{name}' already.")
        await self._record(actor, "team.member_add", name, {"user": user})
        return await self.store.members(name)

    async def remove_member(self, actor: Actor, name: str, user: str) -> list[str]:
        """Remove a member and revoke their keys for the team: a key charges its team only while its
        owner belongs to it (their other keys go on)."""
        await self.find(name)
        if not await self.store.remove_member(name, user):
            raise NotFoundError(
                f"The user '{user}' is not a member of the team '{name}'.", code="member_not_found"
            )
        revoked = await self._revoke_keys(actor, user, name)
        await self._record(actor, "team.member_remove", name, {"user": user, "revoked_keys": revoked})
        return await self.store.members(name)

    async def check_key_team(self, user: str, team: str | None) -> None:
        """A key may be created for one of its owner's teams only (or none)."""
        if team is None:
            return
        if team not in await self.store.teams_of(user):
            # One answer whether the team exists or not: a caller learns nothing about others' teams.
            raise InvalidRequestError(
                f"`team`: The user '{user}' is not a member of a team '{team}'; a key is created for one of "
                "its owner's teams.",
                param="team",
            )
