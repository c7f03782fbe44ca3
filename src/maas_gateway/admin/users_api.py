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
from maas_gateway.auth.key_repository import StoredUser
from maas_gateway.errors import GatewayError, InvalidRequestError, NotFoundError

if TYPE_CHECKING:
    from maas_gateway.proxy.components import Components

__all__ = ["users_router"]


class ConflictError(GatewayError):
    status_code = 409
    error_type = "invalid_request_error"
    code = "conflict"


def users_router(components: "Components", admin: Callable[..., Awaitable[None]]) -> APIRouter:
    router = APIRouter(dependencies=[Depends(admin)])

    def check_tier(tier: str) -> str:
        if tier not in components.config.tiers:
            choices = ", ".join(components.config.tiers)
            raise InvalidRequestError(
                f"The tier '{tier}' does not exist; choose from {choices}.", param="tier"
            )
        return tier

    async def existing(user: str) -> StoredUser:
        found = await components.keys.repository.get_user(user)
        if found is None:
            raise NotFoundError(f"There is no user '{user}'.", code="user_not_found")
        return found

    @router.get("/admin/users", tags=["admin: users"])
    async def list_users(
        page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
        page_size: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> UserList:
        """Users known to the key store (created by an admin or by their first self-service key)."""
        found, total = await components.keys.repository.list_users(
            offset=(page - 1) * page_size, limit=page_size
        )
        return UserList(data=[UserOut.of(u) for u in found], page=page, page_size=page_size, total=total)

    @router.post("/admin/users", status_code=201, tags=["admin: users"])
    async def create_user(body: UserCreate) -> UserOut:
        """Create a user with a tier; 409 if the user exists."""
        if await components.keys.repository.get_user(body.user) is not None:
            raise ConflictError(f"The user '{body.user}' already exists.")
        user = StoredUser(body.user, check_tier(body.tier), body.display_name, False, time.time())
        await components.keys.repository.put_user(user)
        return UserOut.of(user)

    @router.get("/admin/users/{user}", tags=["admin: users"])
    async def get_user(user: str) -> UserOut:
        """One user."""
        return UserOut.of(await existing(user))

    @router.patch("/admin/users/{user}", tags=["admin: users"])
    async def update_user(user: str, body: UserUpdate) -> UserOut:
        """Set a user's tier, display name, or disable them; takes effect on their keys at once here."""
        current = await existing(user)
        changes: dict[str, Any] = {}
        if body.tier is not None:
            changes["tier"] = check_tier(body.tier)
        if body.disabled is not None:
            changes["disabled"] = body.disabled
        if body.display_name is not None:
            changes["display_name"] = body.display_name
        updated = replace(current, **changes)
        await components.keys.repository.put_user(updated)
        components.keys.forget(user=user)
        return UserOut.of(updated)

    @router.get("/admin/tiers", tags=["admin: catalog"])
    async def tiers() -> dict[str, Any]:
        """Tiers and their limits, as configured."""
        data = [
            {"name": name, **tier.model_dump(mode="json")} for name, tier in components.config.tiers.items()
        ]
        return {"object": "list", "data": data}

    @router.get("/admin/models", tags=["admin: catalog"])
    async def models() -> dict[str, Any]:
        """Models, their backends, hosts, tiers, multipliers and prices, as configured."""
        data = [model.model_dump(mode="json") for model in components.config.models]
        return {"object": "list", "data": data}

    return router
