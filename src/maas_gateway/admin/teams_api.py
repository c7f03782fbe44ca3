"""Teams over HTTP, for administrators: create, list, show, delete, and add or remove members.

Every change goes through ``AdminActions.teams`` and is audited. A key is created for a team with
``team`` on ``POST /v1/keys`` or ``POST /admin/keys`` (its owner must be a member).
"""

# No `from __future__ import annotations`: FastAPI reads these annotations as objects.

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from maas_gateway.admin.services import AdminServices
from maas_gateway.audit.entries import Actor
from maas_gateway.teams import Team

__all__ = ["MemberAdd", "TeamCreate", "TeamList", "TeamOut", "teams_router"]


class TeamCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100, description="Letters, digits, '.', '_' and '-'.")
    display_name: str | None = Field(default=None, max_length=200)


class MemberAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user: str = Field(min_length=1, max_length=200)


class TeamOut(BaseModel):
    name: str
    display_name: str | None
    created_at: float
    members: list[str]

    @classmethod
    def of(cls, team: Team, members: list[str]) -> "TeamOut":
        return cls(
            name=team.name, display_name=team.display_name, created_at=team.created_at, members=members
        )


class TeamList(BaseModel):
    data: list[TeamOut]


def teams_router(
    services: AdminServices, admin: Callable[..., Awaitable[None]], actor: Callable[..., Awaitable[Actor]]
) -> APIRouter:
    router = APIRouter(dependencies=[Depends(admin)])
    teams = services.actions.teams

    @router.get("/admin/teams", tags=["admin: teams"])
    async def list_teams() -> TeamList:
        """Every team, by name, with its members."""
        found = await teams.store.all()
        return TeamList(data=[TeamOut.of(team, await teams.store.members(team.name)) for team in found])

    @router.post("/admin/teams", status_code=201, tags=["admin: teams"])
    async def create_team(body: TeamCreate, who: Annotated[Actor, Depends(actor)]) -> TeamOut:
        """Create a team (a cost centre); 409 if one of that name exists."""
        return TeamOut.of(await teams.create(who, body.name, body.display_name), [])

    @router.get("/admin/teams/{name}", tags=["admin: teams"])
    async def get_team(name: str) -> TeamOut:
        return TeamOut.of(await teams.find(name), await teams.store.members(name))

    @router.delete("/admin/teams/{name}", status_code=204, tags=["admin: teams"])
    async def delete_team(name: str, who: Annotated[Actor, Depends(actor)]) -> Response:
        """Delete a team and its memberships, revoking its members' keys for it; usage already charged to
        it stays in the reports."""
        await teams.delete(who, name)
        return Response(status_code=204)

    @router.post("/admin/teams/{name}/members", status_code=201, tags=["admin: teams"])
    async def add_member(name: str, body: MemberAdd, who: Annotated[Actor, Depends(actor)]) -> TeamOut:
        """Add a user to the team; 409 when they are a member already."""
        members = await teams.add_member(who, name, body.user)
        return TeamOut.of(await teams.find(name), members)

    @router.delete("/admin/teams/{name}/members/{user}", tags=["admin: teams"])
    async def remove_member(name: str, user: str, who: Annotated[Actor, Depends(actor)]) -> TeamOut:
        """Remove a user from the team; their keys made for it are revoked (audited), their others go on."""
        members = await teams.remove_member(who, name, user)
        return TeamOut.of(await teams.find(name), members)

    return router
