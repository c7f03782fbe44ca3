"""Request and response bodies of the admin and self-service APIs (they make the OpenAPI document)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from maas_gateway.auth.key_repository import StoredKey, StoredUser
from maas_gateway.plans.requests import PlanRequest

__all__ = [
    "AdminKeyCreate",
    "AuditEntryOut",
    "AuditList",
    "BulkRevoke",
    "BulkRevokeResult",
    "CreatedKey",
    "KeyCreate",
    "KeyList",
    "KeyOut",
    "PlanRequestCreate",
    "PlanRequestDeny",
    "PlanRequestList",
    "PlanRequestOut",
    "Rotate",
    "RotatedKey",
    "UserCreate",
    "UserList",
    "UserOut",
    "UserUpdate",
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class KeyCreate(_Body):
    name: str = Field(min_length=1, max_length=200)
    expires_in: str | None = Field(
        default=None, alias="expiresIn", description="Lifetime such as 30d or 1h; capped by the server."
    )
    ephemeral: bool = Field(default=False, description="Short-lived key, at most 1 hour.")
    models: list[str] | None = Field(default=None, description="Models this key may use; omitted: all.")
    team: str | None = Field(
        default=None,
        max_length=100,
        description="One of the owner's teams: the key's usage is charged to it (and its limits apply).",
    )


class AdminKeyCreate(KeyCreate):
    user: str = Field(min_length=1, max_length=200)
    tier: str | None = Field(default=None, description="Tier for a user who does not exist yet.")


class KeyOut(BaseModel):
    id: str
    name: str
    user: str
    active: bool
    ephemeral: bool
    models: list[str] | None
    created_at: float
    expires_at: float | None
    revoked_at: float | None
    last_used_at: float | None
    team: str | None = None

    @classmethod
    def of(cls, key: StoredKey, now: float) -> KeyOut:
        return cls(
            id=key.key_id,
            name=key.name,
            user=key.user,
            active=key.active_at(now),
            ephemeral=key.ephemeral,
            models=list(key.models) if key.models is not None else None,
            created_at=key.created_at,
            expires_at=key.expires_at,
            revoked_at=key.revoked_at,
            last_used_at=key.last_used_at,
            team=key.team,
        )


class CreatedKey(KeyOut):
    key: str = Field(description="The secret. It is shown only in this answer.")


class KeyList(BaseModel):
    data: list[KeyOut]
    page: int
    page_size: int
    total: int


class Rotate(_Body):
    grace_period: str = Field(
        default="1h", alias="gracePeriod", description="How long the old key keeps working."
    )


class RotatedKey(BaseModel):
    new: CreatedKey
    old: KeyOut


class BulkRevoke(_Body):
    ids: list[str] | None = Field(default=None, description="Keys to revoke; omitted with all=true.")
    all: bool = Field(default=False, description="Revoke every active key of the caller.")
    dry_run: bool = Field(default=False, alias="dryRun", description="Only list what would be revoked.")


class BulkRevokeResult(BaseModel):
    dry_run: bool
    revoked: list[KeyOut]


class UserCreate(_Body):
    user: str = Field(min_length=1, max_length=200)
    tier: str
    display_name: str | None = None


class UserUpdate(_Body):
    tier: str | None = Field(
        default=None, description="The user's tier from now on, whatever their credentials; null: none."
    )
    disabled: bool | None = None
    display_name: str | None = None


class UserOut(BaseModel):
    user: str
    tier: str = Field(description="The tier the user gets now; empty when nothing gives them one.")
    source: str = Field(description="admin, config (the configuration file) or oidc (an identity provider).")
    tier_override: str | None = Field(description="An administrator's tier, which beats the source's.")
    display_name: str | None
    disabled: bool
    deprovisioned: bool = Field(description="Their identity provider no longer maps them to a tier.")
    created_at: float

    @classmethod
    def of(cls, user: StoredUser, tier: str) -> UserOut:
        return cls(
            user=user.user,
            tier=tier,
            source=user.source,
            tier_override=user.tier_override,
            display_name=user.display_name,
            disabled=user.disabled,
            deprovisioned=user.deprovisioned,
            created_at=user.created_at,
        )


class UserList(BaseModel):
    data: list[UserOut]
    page: int
    page_size: int
    total: int


class PlanRequestCreate(_Body):
    tier: str = Field(min_length=1, max_length=100, description="The tier asked for.")
    note: str | None = Field(default=None, max_length=2000, description="Why, for the administrator.")


class PlanRequestDeny(_Body):
    reason: str | None = Field(default=None, max_length=2000, description="Why, shown to the user.")


class PlanRequestOut(BaseModel):
    id: str
    user: str
    from_tier: str = Field(description="The tier the user had when asking.")
    tier: str = Field(description="The tier asked for.")
    note: str | None
    status: str = Field(description="pending, approved, denied or withdrawn.")
    created_at: float
    decided_at: float | None
    decided_by: str | None
    reason: str | None

    @classmethod
    def of(cls, request: PlanRequest) -> PlanRequestOut:
        return cls(
            id=request.request_id,
            user=request.user,
            from_tier=request.from_tier,
            tier=request.tier,
            note=request.note,
            status=request.status,
            created_at=request.created_at,
            decided_at=request.decided_at,
            decided_by=request.decided_by,
            reason=request.reason,
        )


class PlanRequestList(BaseModel):
    data: list[PlanRequestOut]
    page: int
    page_size: int
    total: int


class AuditEntryOut(BaseModel):
    id: int
    at: float
    actor: str = Field(description="`admin key`, or the name of the admin user (token or portal).")
    actor_kind: str = Field(description="admin_key, oidc (an admin group's token) or portal.")
    address: str = Field(description="The client's address as the gateway saw it (behind trusted proxies).")
    action: str
    subject: str
    details: dict[str, Any]


class AuditList(BaseModel):
    object: str = "list"
    data: list[AuditEntryOut]
    next_cursor: int | None = Field(description="Pass as `before` for the next, older page; null at the end.")
