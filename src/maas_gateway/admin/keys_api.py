"""API keys over HTTP: the admin's view of everyone's keys, and each user's self-service.

Self-service answers 404 for another user's key id (never 403), so key ids cannot be probed.
"""

# No `from __future__ import annotations`: FastAPI reads these annotations as objects.

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, Query

from maas_gateway.admin.schemas import (
    AdminKeyCreate,
    BulkRevoke,
    BulkRevokeResult,
    CreatedKey,
    KeyCreate,
    KeyList,
    KeyOut,
    Rotate,
    RotatedKey,
)
from maas_gateway.auth import Identity
from maas_gateway.auth.key_repository import StoredKey
from maas_gateway.config.durations import parse_duration
from maas_gateway.errors import InvalidRequestError

if TYPE_CHECKING:
    from maas_gateway.auth.key_service import KeyService
    from maas_gateway.proxy.components import Components

__all__ = ["keys_router"]

Page = Annotated[int, Query(ge=1, le=1_000_000)]
PageSize = Annotated[int, Query(ge=1, le=500)]


def _seconds(value: str | None, field: str, *, allow_zero: bool = False) -> float | None:
    if value is None:
        return None
    try:
        return parse_duration(value, allow_zero=allow_zero)
    except ValueError as exc:
        raise InvalidRequestError(f"`{field}`: {exc}", param=field) from None


def _created(plaintext: str, key: StoredKey) -> CreatedKey:
    return CreatedKey(key=plaintext, **KeyOut.of(key, time.time()).model_dump())


def keys_router(
    components: "Components",
    admin: Callable[..., Awaitable[None]],
    caller: Callable[..., Awaitable[Identity]],
) -> APIRouter:
    router = APIRouter()

    def service() -> "KeyService":
        return components.keys

    def check_models(models: list[str] | None) -> tuple[str, ...] | None:
        if models is None:
            return None
        known = {model.name for model in components.config.models}
        for model in models:
            if model not in known:
                raise InvalidRequestError(f"The model '{model}' does not exist.", param="models")
        return tuple(models)

    def check_tier(tier: str) -> str:
        if tier not in components.config.tiers:
            raise InvalidRequestError(
                f"The tier '{tier}' does not exist; choose from {', '.join(components.config.tiers)}.",
                param="tier",
            )
        return tier

    async def create(owner: str, body: KeyCreate) -> CreatedKey:
        plaintext, key = await service().create(
            owner,
            name=body.name,
            lifetime=_seconds(body.expires_in, "expiresIn"),
            ephemeral=body.ephemeral,
            models=check_models(body.models),
        )
        return _created(plaintext, key)

    async def listing(
        owner: str | None, search: str | None, include_inactive: bool, page: int, page_size: int
    ) -> KeyList:
        found = await service().list(
            owner=owner, search=search, include_inactive=include_inactive, page=page, page_size=page_size
        )
        now = time.time()
        data = [KeyOut.of(key, now) for key in found.keys]
        return KeyList(data=data, page=page, page_size=page_size, total=found.total)

    @router.get("/admin/keys", dependencies=[Depends(admin)], tags=["admin: keys"])
    async def admin_list_keys(
        user: str | None = None,
        search: str | None = None,
        include_inactive: bool = False,
        page: Page = 1,
        page_size: PageSize = 50,
    ) -> KeyList:
        """Every user's keys (never their secrets), optionally for one user or matching a search."""
        return await listing(user, search, include_inactive, page, page_size)

    @router.post("/admin/keys", dependencies=[Depends(admin)], status_code=201, tags=["admin: keys"])
    async def admin_create_key(body: AdminKeyCreate) -> CreatedKey:
        """Create a key for a user (created with `tier` if new). The secret is shown only here."""
        existing = await components.keys.repository.get_user(body.user)
        if existing is None:
            if body.tier is None:
                raise InvalidRequestError(
                    f"The user '{body.user}' does not exist; give a `tier` to create them.", param="tier"
                )
            await service().ensure_user(body.user, check_tier(body.tier))
        return await create(body.user, body)

    @router.delete("/admin/keys/{key_id}", dependencies=[Depends(admin)], tags=["admin: keys"])
    async def admin_revoke_key(key_id: str) -> KeyOut:
        """Revoke a key at once."""
        return KeyOut.of(await service().revoke(key_id, owner=None), time.time())

    @router.post("/admin/keys/{key_id}/rotate", dependencies=[Depends(admin)], tags=["admin: keys"])
    async def admin_rotate_key(key_id: str, body: Rotate | None = None) -> RotatedKey:
        """Issue a replacement; the old key keeps working for the grace period only."""
        return await rotate(key_id, None, body or Rotate())

    async def rotate(key_id: str, owner: str | None, body: Rotate) -> RotatedKey:
        grace = _seconds(body.grace_period, "gracePeriod", allow_zero=True) or 0.0
        if grace > 7 * 86400:
            raise InvalidRequestError("`gracePeriod` may be at most 7d.", param="gracePeriod")
        plaintext, new, old = await service().rotate(key_id, owner=owner, grace=grace)
        return RotatedKey(new=_created(plaintext, new), old=KeyOut.of(old, time.time()))

    @router.get("/v1/keys", tags=["self-service"])
    async def own_keys(
        identity: Annotated[Identity, Depends(caller)],
        search: str | None = None,
        include_inactive: bool = False,
        page: Page = 1,
        page_size: PageSize = 50,
    ) -> KeyList:
        """The caller's own keys, newest last, paginated; secrets are never returned again."""
        return await listing(identity.user, search, include_inactive, page, page_size)

    @router.post("/v1/keys", status_code=201, tags=["self-service"])
    async def create_own_key(identity: Annotated[Identity, Depends(caller)], body: KeyCreate) -> CreatedKey:
        """Create a key for the caller, with the caller's tier. The secret is shown only here."""
        await service().ensure_user(identity.user, identity.tier, identity.display_name)
        return await create(identity.user, body)

    @router.delete("/v1/keys/{key_id}", tags=["self-service"])
    async def revoke_own_key(identity: Annotated[Identity, Depends(caller)], key_id: str) -> KeyOut:
        """Revoke one of the caller's keys; another user's key id is 404."""
        return KeyOut.of(await service().revoke(key_id, owner=identity.user), time.time())

    @router.post("/v1/keys/{key_id}/rotate", tags=["self-service"])
    async def rotate_own_key(
        identity: Annotated[Identity, Depends(caller)], key_id: str, body: Rotate | None = None
    ) -> RotatedKey:
        """Replace one of the caller's keys, keeping the old one for the grace period."""
        return await rotate(key_id, identity.user, body or Rotate())

    @router.post("/v1/keys/revoke", tags=["self-service"])
    async def bulk_revoke(
        identity: Annotated[Identity, Depends(caller)], body: BulkRevoke
    ) -> BulkRevokeResult:
        """Revoke several of the caller's keys (or all); `dryRun` lists them without revoking."""
        if body.all == (body.ids is not None):
            raise InvalidRequestError("Give either `ids` or `all: true`.", param="ids")
        if body.all:
            page = await service().list(owner=identity.user, page_size=10_000)
            targets = page.keys
        else:
            targets = [await service().owned(key_id, identity.user) for key_id in body.ids or []]
        now = time.time()
        if not body.dry_run:
            targets = [await service().revoke(key.key_id, owner=identity.user) for key in targets]
        return BulkRevokeResult(dry_run=body.dry_run, revoked=[KeyOut.of(k, now) for k in targets])

    return router
