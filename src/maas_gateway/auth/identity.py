"""Who is calling: the result of authentication, free of any HTTP framework."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Identity"]


@dataclass(slots=True)  # per request: a frozen dataclass costs 4x as much to build
class Identity:
    """An authenticated caller.

    ``user`` keys limits and usage (namespaced by its source: see ``auth.namespaces``); ``key_id`` names
    the credential without revealing it; ``models`` is the credential's own allow-list (``None`` allows
    every model the tier may use); ``expires_at`` is when the credential stops working, if ever.
    """

    user: str
    tier: str
    key_id: str
    source: str = "config_key"  # config_key, key (created through the API), or oidc
    models: frozenset[str] | None = None
    display_name: str | None = None  # e.g. the token's preferred_username or email, for reports
    is_admin: bool = False  # an OIDC user in one of the issuer's admin groups
    ephemeral: bool = False
    expires_at: float | None = None
    team: str | None = None  # the team the credential's usage is charged to (a key's team)

    def may_use(self, model: str) -> bool:
        return self.models is None or model in self.models
