"""Everything an administrator can change, each change recorded in the audit log once it is done.

The admin API and the portal both act through ``AdminActions``, so an action has one implementation and
one audit entry whichever door it came through; each method takes the ``Actor`` (the admin key, an admin
group's token user, or a portal user) and the client's address in it. An action that fails (a validation
error, an unknown subject, a lost race) raises before anything is recorded. An entry that cannot be
written after the action succeeded is logged as an error with its content, and the action's answer
stands: it happened, and the caller must learn so.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from maas_gateway.admin.team_actions import TeamActions
from maas_gateway.audit.entries import Actor, AuditLog
from maas_gateway.auth.key_repository import KeyRepository, StoredKey, StoredUser, UserChanges, UserSource
from maas_gateway.auth.key_service import KeyService
from maas_gateway.auth.user_directory import UserDirectory
from maas_gateway.config.schema import GatewayConfig
from maas_gateway.errors import ConflictError, InvalidRequestError, NotFoundError
from maas_gateway.plans.requests import PlanRequest
from maas_gateway.plans.service import PlanRequestService
from maas_gateway.teams import InMemoryTeamStore, TeamStore

__all__ = ["KEEP", "AdminActions", "Keep"]

logger = logging.getLogger("maas_gateway.audit")


class Keep(enum.Enum):
    """Leave a field as it is (``None`` means something else: ``tier=None`` removes an override)."""

    KEEP = "keep"


KEEP = Keep.KEEP
_PAGE = 200  # keys per page while looking for a user's keys of a team


class AdminActions:
    def __init__(
        self,
        keys: KeyService,
        users: UserDirectory,
        plans: PlanRequestService,
        audit: AuditLog,
        config: Callable[[], GatewayConfig],
        clock: Callable[[], float] = time.time,
        teams: TeamStore | None = None,
    ) -> None:
        """``teams`` defaults to a store in memory (demos and tests that do not use teams)."""
        self.keys = keys
        self.users = users
        self.plans = plans
        self.audit = audit
        self._config = config
        self._clock = clock
        store = teams if teams is not None else InMemoryTeamStore()
        self.teams = TeamActions(store, self._record, clock, self._revoke_team_keys)

    @property
    def repository(self) -> KeyRepository:
        return self.keys.repository

    async def _record(self, actor: Actor, action: str, subject: str, details: dict[str, Any]) -> None:
        try:
            await self.audit.record(actor, action, subject, details, self._clock())
        except Exception:  # the action is done; its answer must not turn into an error
            logger.exception(
                "The audit entry %s on %s by %s (%s) could not be written.",
                action,
                subject,
                actor.name,
                actor.address,
            )

    # -- users ------------------------------------------------------------------------------------------

    def check_tier(self, tier: str) -> str:
        return self.plans.check_tier(tier)

    async def find_user(self, user: str) -> StoredUser:
        """The user's row, or a configuration-file user's row-to-be; 404 when neither exists."""
        found = await self.repository.get_user(user)
        if found is not None:
            return found
        tier = self._config().configured_tier(user)
        if tier is not None:
            return StoredUser(user, tier, None, False, self._clock(), "config")
        if ":" in user:
            raise NotFoundError(
                f"There is no user '{user}' yet: an identity provider's user appears at their first "
                "token; create them beforehand with POST /admin/users.",
                code="user_not_found",
            )
        raise NotFoundError(f"There is no user '{user}'.", code="user_not_found")

    async def create_user(self, actor: Actor, user: str, tier: str, display_name: str | None) -> StoredUser:
        """Create a user with a tier; 409 if they exist. ``<namespace>:<name>`` pre-provisions a user of
        an identity provider (their tokens' groups then set their tier)."""
        config = self._config()
        if problem := config.user_name_problem(user, identity_provider_users=True):
            raise InvalidRequestError(f"`user`: {problem[0].upper()}{problem[1:]}", param="user")
        self.check_tier(tier)
        source: UserSource = "oidc" if ":" in user else "admin"
        if config.configures(user):
            source = "config"
        stored = StoredUser(user, tier, display_name, False, self._clock(), source)
        if not await self.repository.add_user(stored):
            raise ConflictError(f"The user '{user}' already exists.")
        if source == "config":
            # The configuration file gives this user's tier; the administrator's choice is kept as an
            # override, which is what they asked for.
            stored = await self.repository.update_user(user, UserChanges(tier_override=tier)) or stored
        self.users.forget(user)
        await self._record(actor, "user.create", user, {"tier": tier, "display_name": display_name})
        return stored

    async def update_user(
        self,
        actor: Actor,
        user: str,
        *,
        tier: str | Keep | None = KEEP,
        disabled: bool | None = None,
        display_name: str | None = None,
    ) -> StoredUser:
        """Set a user's tier (``None``: remove an override), disable or enable them, rename them, whatever
        their credentials; every replica applies it within a second (the identity change log)."""
        previous, updated = await self._change_user(user, tier, disabled, display_name)
        said = {"disabled": disabled, "display_name": display_name}
        details: dict[str, Any] = {name: value for name, value in said.items() if value is not None}
        if not isinstance(tier, Keep):
            details |= {"tier": tier, "previous_tier": previous}
        await self._record(actor, "user.update", user, details)
        return updated

    async def _change_user(
        self, user: str, tier: str | Keep | None, disabled: bool | None, display_name: str | None
    ) -> tuple[str, StoredUser]:
        """The one path that changes a user (and tells other replicas); the tier they had, and the row."""
        current = await self.find_user(user)
        changes = UserChanges(disabled=disabled, display_name=display_name)
        if tier is None:
            changes = replace(changes, clear_tier_override=True)
        elif not isinstance(tier, Keep):
            self.check_tier(tier)
            # A user the configuration file names (a key there) gets an override even when an
            # administrator made their row: only an override beats the file's tier for those keys.
            if current.source == "admin" and not self._config().configures(user):
                changes = replace(changes, tier=tier, clear_tier_override=True)
            else:
                changes = replace(changes, tier_override=tier)
        await self.repository.add_user(current)  # a configuration-file user gets their row now
        updated = await self.repository.update_user(user, changes)
        self.users.forget(user)
        if updated is None:
            raise NotFoundError(f"There is no user '{user}'.", code="user_not_found")
        return current.tier_override or current.tier, updated

    # -- keys -------------------------------------------------------------------------------------------

    async def create_key(
        self,
        actor: Actor,
        user: str,
        *,
        name: str,
        lifetime: float,
        ephemeral: bool = False,
        models: tuple[str, ...] | None = None,
        new_owner: StoredUser | None = None,
        team: str | None = None,
    ) -> tuple[str, StoredKey]:
        """A key for ``user`` (checked by the caller), for one of their teams if ``team`` is given; the
        secret is returned, never recorded."""
        await self.teams.check_key_team(user, team)
        plaintext, key = await self.keys.create(
            user,
            name=name,
            lifetime=lifetime,
            ephemeral=ephemeral,
            models=models,
            new_owner=new_owner,
            team=team,
        )
        self.users.forget(user)
        details = {
            "user": user,
            "name": name,
            "ephemeral": ephemeral,
            "models": list(models) if models is not None else None,
            "expires_at": key.expires_at,
            "new_user": new_owner is not None,
            "team": team,
        }
        await self._record(actor, "key.create", key.key_id, details)
        return plaintext, key

    async def revoke_key(self, actor: Actor, key_id: str) -> StoredKey:
        revoked = await self.keys.revoke(key_id, owner=None)
        await self._record(actor, "key.revoke", key_id, {"user": revoked.user, "name": revoked.name})
        return revoked

    async def _revoke_team_keys(self, actor: Actor, user: str, team: str) -> list[str]:
        """Revoke ``user``'s active keys for ``team`` (they left it), each audited; the ids revoked."""
        found: list[str] = []
        page = 1
        while True:  # collected first: revoking while paging would shift the pages
            listed = await self.keys.list(owner=user, page=page, page_size=_PAGE)
            found += [key.key_id for key in listed.keys if key.team == team]
            if page * _PAGE >= listed.total:
                break
            page += 1
        revoked = []
        for key_id in found:
            try:
                await self.keys.revoke(key_id, owner=None)
            except NotFoundError:  # revoked or purged meanwhile
                continue
            details = {"user": user, "reason": f"The user left the team '{team}'."}
            await self._record(actor, "key.revoke", key_id, details)
            revoked.append(key_id)
        return revoked

    async def rotate_key(
        self, actor: Actor, key_id: str, *, grace: float
    ) -> tuple[str, StoredKey, StoredKey]:
        """A replacement for ``key_id``; the old key works ``grace`` seconds more."""
        old = await self.keys.owned(key_id, None)
        plaintext, new, retired = await self.keys.rotate(old, grace=grace)
        details = {"user": old.user, "new_key_id": new.key_id, "grace_seconds": grace}
        await self._record(actor, "key.rotate", key_id, details)
        return plaintext, new, retired

    # -- plan change requests ---------------------------------------------------------------------------

    async def approve_plan_request(self, actor: Actor, request_id: str) -> PlanRequest:
        """Approve a pending request and move the user to its tier at once (on every replica).

        The decision is taken first (so of two racing administrators exactly one goes on); if the tier
        cannot be applied (it left the configuration, the user is gone) the request is pending again.
        """
        request = await self.plans.owned(request_id, None)
        self.check_tier(request.tier)
        approved = await self.plans.decide(request_id, "approved", by=actor.name, reason=None)
        try:
            previous, _ = await self._change_user(request.user, request.tier, None, None)
        except BaseException:
            await self.plans.reopen(request_id, "approved")
            raise
        details = {"user": request.user, "from_tier": previous, "tier": request.tier}
        await self._record(actor, "plan_request.approve", request_id, details)
        return approved

    async def deny_plan_request(self, actor: Actor, request_id: str, reason: str | None) -> PlanRequest:
        request = await self.plans.owned(request_id, None)
        denied = await self.plans.decide(request_id, "denied", by=actor.name, reason=reason)
        details = {"user": request.user, "tier": request.tier, "reason": reason}
        await self._record(actor, "plan_request.deny", request_id, details)
        return denied
