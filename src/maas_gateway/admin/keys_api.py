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
from maas_gateway.admin.services import AdminServices
from maas_gateway.audit.entries import Actor
from maas_gateway.auth import Identity
from maas_gateway.auth.key_policy import unknown_models
from maas_gateway.auth.key_repository import StoredKey, StoredUser, UserSource
from maas_gateway.auth.own_keys import OwnKeys
from maas_gateway.config.durations import parse_duration
from maas_gateway.errors import ConflictError, InvalidRequestError

if TYPE_CHECKING:
    from maas_gateway.auth.key_service import KeyService

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


def _grace(value: str) -> float:
    grace = _seconds(value, "gracePeriod", allow_zero=True) or 0.0
    if grace > 7 * 86400:
        raise InvalidRequestError("`gracePeriod` may be at most 7d.", param="gracePeriod")
    return grace


def _created(plaintext: str, key: StoredKey) -> CreatedKey:
    return CreatedKey(key=plaintext, **KeyOut.of(key, time.time()).model_dump())


def keys_router(
    services: AdminServices,
    admin: Callable[..., Awaitable[None]],
    caller: Callable[..., Awaitable[Identity]],
    actor: Callable[..., Awaitable[Actor]],
) -> APIRouter:
    router = APIRouter()

    def service() -> "KeyService":
        return services.keys

    own = OwnKeys(services.keys, services.users, services.config)

    def check_tier(tier: str) -> str:
        if tier not in services.config().tiers:
            raise InvalidRequestError(
                f"The tier '{tier}' does not exist; choose from {', '.join(services.config().tiers)}.",
                param="tier",
            )
        return tier

    async def create_for(identity: Identity, body: KeyCreate) -> CreatedKey:
        """Self-service: a key no stronger than the credential asking for it."""
        requested = _seconds(body.expires_in, "expiresIn")
        await services.actions.teams.check_key_team(identity.user, body.team)
        plaintext, key = await own.create(
            identity,
            name=body.name,
            models=body.models,
            lifetime=requested,
            ephemeral=body.ephemeral,
            team=body.team,
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
    async def admin_create_key(body: AdminKeyCreate, who: Annotated[Actor, Depends(actor)]) -> CreatedKey:
        """Create a key for a user (created with `tier` if new). The secret is shown only here.

        Everything is checked before anything is written; a new user and their key are stored together.
        """
        if problem := services.config().user_name_problem(body.user, identity_provider_users=True):
            raise InvalidRequestError(f"`user`: {problem[0].upper()}{problem[1:]}", param="user")
        if body.models is not None:
            unknown_models(body.models, [m.name for m in services.config().models])
        tier = check_tier(body.tier) if body.tier is not None else None
        lifetime = service().lifetime(_seconds(body.expires_in, "expiresIn"), ephemeral=body.ephemeral)
        existing = await service().repository.get_user(body.user)
        configured_tier = services.config().configured_tier(body.user)
        new_owner = None
        if existing is not None or configured_tier is not None:
            current = (existing.tier_override or existing.tier) if existing is not None else configured_tier
            if tier is not None and tier != current:
                raise ConflictError(
                    f"The user '{body.user}' exists on the tier '{current}', not '{tier}'; leave out "
                    "`tier`, or move the user first (PATCH /admin/users/{user}).",
                    param="tier",
                )
            if existing is None and configured_tier is not None:
                new_owner = StoredUser(body.user, configured_tier, None, False, time.time(), "config")
        elif tier is None:
            raise InvalidRequestError(
                f"The user '{body.user}' does not exist; give a `tier` to create them.", param="tier"
            )
        else:
            source: UserSource = "oidc" if ":" in body.user else "admin"
            new_owner = StoredUser(body.user, tier, None, False, time.time(), source)
        models = tuple(dict.fromkeys(body.models)) if body.models is not None else None
        plaintext, key = await services.actions.create_key(
            who,
            body.user,
            name=body.name,
            lifetime=lifetime,
            ephemeral=body.ephemeral,
            models=models,
            new_owner=new_owner,
            team=body.team,
        )
        return _created(plaintext, key)

    @router.delete("/admin/keys/{key_id}", dependencies=[Depends(admin)], tags=["admin: keys"])
    async def admin_revoke_key(key_id: str, who: Annotated[Actor, Depends(actor)]) -> KeyOut:
        """Revoke a key at once."""
        return KeyOut.of(await services.actions.revoke_key(who, key_id), time.time())

    @router.post("/admin/keys/{key_id}/rotate", dependencies=[Depends(admin)], tags=["admin: keys"])
    async def admin_rotate_key(
        key_id: str, who: Annotated[Actor, Depends(actor)], body: Rotate | None = None
    ) -> RotatedKey:
        """Issue a replacement; the old key keeps working for the grace period only."""
        grace = _grace((body or Rotate()).grace_period)
        plaintext, new, retired = await services.actions.rotate_key(who, key_id, grace=grace)
        return RotatedKey(new=_created(plaintext, new), old=KeyOut.of(retired, time.time()))

    async def rotate(key_id: str, rotator: Identity, body: Rotate) -> RotatedKey:
        grace = _grace(body.grace_period)
        plaintext, new, retired = await own.rotate(rotator, key_id, grace=grace)
        return RotatedKey(new=_created(plaintext, new), old=KeyOut.of(retired, time.time()))

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
        """Create a key for the caller, no stronger than the caller's own credential (models, expiry;
        an ephemeral key creates none). The secret is shown only here."""
        return await create_for(identity, body)

    @router.delete("/v1/keys/{key_id}", tags=["self-service"])
    async def revoke_own_key(identity: Annotated[Identity, Depends(caller)], key_id: str) -> KeyOut:
        """Revoke one of the caller's keys; another user's key id is 404."""
        return KeyOut.of(await own.revoke(identity, key_id), time.time())

    @router.post("/v1/keys/{key_id}/rotate", tags=["self-service"])
    async def rotate_own_key(
        identity: Annotated[Identity, Depends(caller)], key_id: str, body: Rotate | None = None
    ) -> RotatedKey:
        """Replace one of the caller's keys, keeping the old one for the grace period."""
        return await rotate(key_id, identity, body or Rotate())

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
