"""Request and response bodies of the admin and self-service APIs (they make the OpenAPI document)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from maas_gateway.auth.key_repository import StoredKey, StoredUser

__all__ = [
    "AdminKeyCreate",
    "BulkRevoke",
    "BulkRevokeResult",
    "CreatedKey",
    "KeyCreate",
    "KeyList",
    "KeyOut",
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
