"""The ``portal`` section: the developer and admin portal served at ``/portal/`` (docs/portal.md)."""

from __future__ import annotations

from pydantic import Field, model_validator

from maas_gateway.config.base import Strict
from maas_gateway.config.durations import Duration

__all__ = ["PortalSettings", "SelfRegistrationSettings", "SignInThrottleSettings"]


class SignInThrottleSettings(Strict):
    """Failed sign-ins allowed in a row, per account and per client address, before a 429 page."""

    burst: int = Field(
        default=5, ge=1, description="Failed sign-ins in a row for one account or one address before 429."
    )
    per: Duration = Field(
        default=300.0,
        description="Time in which the allowance refills completely; also the longest a refusal lasts.",
    )
    max_entries: int = Field(
        default=100_000, ge=1, description="Accounts and addresses with recent failures remembered at most."
    )


class SelfRegistrationSettings(Strict):
    """Visitors creating their own account at /portal/register (off unless enabled)."""

    enabled: bool = Field(default=False, description="Offer /portal/register to visitors.")
    tier: str = Field(default="free", description="The tier of a self-registered account.")
    approval: bool = Field(
        default=False,
        description="New accounts start disabled and wait until an administrator enables them.",
    )
    per_address: int = Field(
        default=5, ge=1, description="Registrations one client address may make per hour."
    )


class PortalSettings(Strict):
    enabled: bool = Field(default=True, description="Serve the portal at /portal/; false answers 404 there.")
    session_idle_timeout: Duration = Field(
        default=1800.0, description="A session unused for this long is signed out."
    )
    session_lifetime: Duration = Field(
        default=12 * 3600.0, description="A session ends this long after sign-in, however much it is used."
    )
    sign_in_throttle: SignInThrottleSettings = Field(default_factory=SignInThrottleSettings)
    self_registration: SelfRegistrationSettings = Field(default_factory=SelfRegistrationSettings)

    @model_validator(mode="after")
    def _idle_within_lifetime(self) -> PortalSettings:
        if self.session_idle_timeout > self.session_lifetime:
            raise ValueError("portal.session_idle_timeout cannot be longer than portal.session_lifetime.")
        return self
