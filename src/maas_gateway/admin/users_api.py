"""Users, tiers and models over HTTP, for administrators.

Tiers and models come from the configuration file, the single source of truth: the API reads them, and
changes go through the file and a reload (`maas reload`), so every replica agrees.
"""

# No `from __future__ import annotations`: FastAPI reads these annotations as objects.

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Query

from maas_gateway.admin.actions import KEEP
from maas_gateway.admin.schemas import UserCreate, UserList, UserOut, UserUpdate
from maas_gateway.admin.services import AdminServices
from maas_gateway.audit.entries import Actor
from maas_gateway.auth.key_repository import StoredUser

if TYPE_CHECKING:
    from maas_gateway.admin.actions import AdminActions

__all__ = ["users_router"]


def users_router(
    services: AdminServices, admin: Callable[..., Awaitable[None]], actor: Callable[..., Awaitable[Actor]]
) -> APIRouter:
    router = APIRouter(dependencies=[Depends(admin)])

    def actions() -> "AdminActions":
        return services.actions

    def shown(user: StoredUser) -> UserOut:
        """The user with the tier they get now (an override, else their source's)."""
        config = services.config()
        source_tier = config.configured_tier(user.user) if user.source == "config" else user.tier
        file_override = config.users.get(user.user)
        tier = (
            user.tier_override
            or (file_override.tier if file_override is not None else None)
            or (source_tier or "")
        )
        return UserOut.of(user, tier)

    @router.get("/admin/users", tags=["admin: users"])
    async def list_users(
        page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
        page_size: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> UserList:
        """Users with a row: created by an admin, by a first key or token, or by an admin's change."""
        found, total = await actions().repository.list_users(offset=(page - 1) * page_size, limit=page_size)
        return UserList(data=[shown(u) for u in found], page=page, page_size=page_size, total=total)

    @router.post("/admin/users", status_code=201, tags=["admin: users"])
    async def create_user(body: UserCreate, who: Annotated[Actor, Depends(actor)]) -> UserOut:
        """Create a user with a tier; 409 if the user exists. `<namespace>:<name>` pre-provisions a user
        of an identity provider (their tokens' groups then set their tier)."""
        return shown(await actions().create_user(who, body.user, body.tier, body.display_name))

    @router.get("/admin/users/{user}", tags=["admin: users"])
    async def get_user(user: str) -> UserOut:
        """One user (a configuration-file user is shown even before they have a row)."""
        return shown(await actions().find_user(user))

    @router.patch("/admin/users/{user}", tags=["admin: users"])
    async def update_user(user: str, body: UserUpdate, who: Annotated[Actor, Depends(actor)]) -> UserOut:
        """Set a user's tier, display name, or disable them, whatever their credentials (configuration
        file, keys, tokens); every replica applies it within a second. `tier: null` removes a tier
        override, so the user's source decides again."""
        tier = body.tier if "tier" in body.model_fields_set else KEEP
        updated = await actions().update_user(
            who, user, tier=tier, disabled=body.disabled, display_name=body.display_name
        )
        return shown(updated)

    @router.get("/admin/tiers", tags=["admin: catalog"])
    async def tiers() -> dict[str, Any]:
        """Tiers and their limits, as configured."""
        data = [
            {"name": name, **tier.model_dump(mode="json")} for name, tier in services.config().tiers.items()
        ]
        return {"object": "list", "data": data}

    @router.get("/admin/models", tags=["admin: catalog"])
    async def models() -> dict[str, Any]:
        """Models, their backends, hosts, tiers, multipliers and prices, as configured, and each backend's
        state now (`backend_states`: healthy, unhealthy or ejected, why, requests in flight, load)."""
        data = [
            {**model.model_dump(mode="json"), "backend_states": services.backend_states(model.name)}
            for model in services.config().models
        ]
        return {"object": "list", "data": data}

    return router
