"""Which tier a caller gets, and whether they may call at all: one rule for every kind of credential.

The users table is the authority over every identity, whatever its credential (a configuration-file key,
a key created through the API, an OIDC token): a disabled user is refused, and an administrator's tier
override beats everything. Otherwise the tier comes from the configuration file's per-user override, else
from the credential's source, re-derived on every lookup so that a key never outlives its owner's
demotion: a configuration-file key's own tier; a token's groups; for a key created through the API, its
owner's source (the administrator's tier, the configuration file's current tier, the last token's groups).
No tier from anywhere means the caller is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from maas_gateway.auth.key_repository import StoredUser
from maas_gateway.auth.oidc import no_tier_error
from maas_gateway.config.durations import format_duration
from maas_gateway.errors import AuthenticationError, PermissionDeniedError

__all__ = ["UserPolicy"]


@dataclass(frozen=True, slots=True)
class UserPolicy:
    """The decision, from plain values; built from the configuration on every (re)load.

    ``configured_tiers``: user → the tier the configuration file gives them (``users`` override, else
    their first key's); ``overrides``: user → the configuration file's ``users.<name>.tier``;
    ``revalidation``: OIDC namespace → how long its users' keys work without a new token.
    """

    configured_tiers: Mapping[str, str] = field(default_factory=dict)
    overrides: Mapping[str, str] = field(default_factory=dict)
    revalidation: Mapping[str, float] = field(default_factory=dict)

    def tier(self, user: str, source: str, source_tier: str, stored: StoredUser | None, now: float) -> str:
        """The caller's tier, or an error that says why they may not call.

        ``source`` is ``config_key``, ``oidc`` or ``key``; ``source_tier`` what the credential itself gives
        (ignored for ``key``, whose tier is its owner's).
        """
        if stored is not None and stored.disabled:
            raise AuthenticationError(f"The user '{user}' is disabled.", code="user_disabled")
        if source == "key":
            if stored is None:
                raise AuthenticationError("The API key's owner no longer exists.", code="invalid_api_key")
            source_tier = self._owner_tier(stored, now)
        tier = (
            (stored.tier_override if stored is not None else None) or self.overrides.get(user) or source_tier
        )
        if tier:
            return tier
        if source == "key":
            raise PermissionDeniedError(
                f"The keys of '{user}' stopped working: their source no longer gives them a tier "
                "(removed from the configuration file, or in no mapped group at their last sign-in).",
                code="user_deprovisioned",
            )
        raise no_tier_error(user)

    def _owner_tier(self, owner: StoredUser, now: float) -> str:
        if owner.source == "config":
            return self.configured_tiers.get(owner.user, "")
        if owner.source == "oidc":
            if owner.deprovisioned:
                return ""
            namespace, colon, _ = owner.user.partition(":")
            window = self.revalidation.get(namespace if colon else "")
            if window is not None and (owner.seen_at is None or now - owner.seen_at > window):
                raise AuthenticationError(
                    f"The keys of '{owner.user}' need a fresh sign-in: their owner presented no token for "
                    f"over {format_duration(window)}. Sign in once with the identity provider to use them "
                    "again.",
                    code="owner_revalidation_required",
                )
        return owner.tier
