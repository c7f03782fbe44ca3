"""Users, tiers and models over HTTP, for administrators.

Tiers and models come from the configuration file, the single source of truth: the API reads them, and
changes go through the file and a reload (`maas reload`), so every replica agrees.
"""

# No `from __future__ import annotations`: FastAPI reads these annotations as objects.

import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Query

from maas_gateway.admin.schemas import UserCreate, UserList, UserOut, UserUpdate
from maas_gateway.admin.services import AdminServices
from maas_gateway.auth.key_repository import StoredUser, UserChanges, UserSource
from maas_gateway.errors import ConflictError, InvalidRequestError, NotFoundError

if TYPE_CHECKING:
    from maas_gateway.auth.key_repository import KeyRepository

__all__ = ["users_router"]


def users_router(services: AdminServices, admin: Callable[..., Awaitable[None]]) -> APIRouter:
    router = APIRouter(dependencies=[Depends(admin)])

    def repository() -> "KeyRepository":
        return services.keys.repository

    def check_tier(tier: str) -> str:
        if tier not in services.config().tiers:
            choices = ", ".join(services.config().tiers)
            raise InvalidRequestError(
                f"The tier '{tier}' does not exist; choose from {choices}.", param="tier"
            )
        return tier

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

    def configured(user: str) -> StoredUser | None:
        """A configuration-file user who has no row yet, as the row they would get."""
        tier = services.config().configured_tier(user)
        if tier is None:
            return None
        return StoredUser(user, tier, None, False, time.time(), "config")

    async def existing(user: str) -> StoredUser:
        found = await repository().get_user(user)
        if found is not None:
            return found
        if (row := configured(user)) is not None:
            return row
        if ":" in user:
            raise NotFoundError(
                f"There is no user '{user}' yet: an identity provider's user appears at their first "
                "token; create them beforehand with POST /admin/users.",
                code="user_not_found",
            )
        raise NotFoundError(f"There is no user '{user}'.", code="user_not_found")

    @router.get("/admin/users", tags=["admin: users"])
    async def list_users(
        page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
        page_size: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> UserList:
        """Users with a row: created by an admin, by a first key or token, or by an admin's change."""
        found, total = await repository().list_users(offset=(page - 1) * page_size, limit=page_size)
        return UserList(data=[shown(u) for u in found], page=page, page_size=page_size, total=total)

    @router.post("/admin/users", status_code=201, tags=["admin: users"])
    async def create_user(body: UserCreate) -> UserOut:
        """Create a user with a tier; 409 if the user exists. `<namespace>:<name>` pre-provisions a user
        of an identity provider (their tokens' groups then set their tier)."""
        if problem := services.config().user_name_problem(body.user, identity_provider_users=True):
            raise InvalidRequestError(f"`user`: {problem[0].upper()}{problem[1:]}", param="user")
        tier = check_tier(body.tier)
        source: UserSource = "oidc" if ":" in body.user else "admin"
        if services.config().configures(body.user):
            source = "config"
        user = StoredUser(body.user, tier, body.display_name, False, time.time(), source)
        if not await repository().add_user(user):
            raise ConflictError(f"The user '{body.user}' already exists.")
        if source == "config":
            # The configuration file gives this user's tier; the administrator's choice is kept as an
            # override, which is what they asked for.
            user = await repository().update_user(body.user, UserChanges(tier_override=tier)) or user
        services.users.forget(body.user)
        return shown(user)

    @router.get("/admin/users/{user}", tags=["admin: users"])
    async def get_user(user: str) -> UserOut:
        """One user (a configuration-file user is shown even before they have a row)."""
        return shown(await existing(user))

    @router.patch("/admin/users/{user}", tags=["admin: users"])
    async def update_user(user: str, body: UserUpdate) -> UserOut:
        """Set a user's tier, display name, or disable them, whatever their credentials (configuration
        file, keys, tokens); every replica applies it within a second. `tier: null` removes a tier
        override, so the user's source decides again."""
        current = await existing(user)
        await repository().add_user(current)  # a configuration-file user gets their row now
        changes = UserChanges(disabled=body.disabled, display_name=body.display_name)
        if "tier" in body.model_fields_set:
            if body.tier is None:
                changes = replace(changes, clear_tier_override=True)
            elif current.source == "admin":
                changes = replace(changes, tier=check_tier(body.tier), clear_tier_override=True)
            else:
                changes = replace(changes, tier_override=check_tier(body.tier))
        updated = await repository().update_user(user, changes)
        services.users.forget(user)
        if updated is None:
            raise NotFoundError(f"There is no user '{user}'.", code="user_not_found")
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
