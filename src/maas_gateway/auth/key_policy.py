"""What a key created through the API may be: never stronger than the credential that creates it.

A key created by a user (self-service) has at most its creator's models and the tier's, lives no longer
than its creator (unless the creator is an identity provider's token, whose short life is a session's,
not a ceiling: such a user creates keys within the tier's rules), and an ephemeral key creates none.
The same holds for rotation: a credential may only rotate keys it could have created.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from maas_gateway.config.durations import format_duration
from maas_gateway.errors import InvalidRequestError, PermissionDeniedError

__all__ = ["Creator", "KeyGrant", "grant_key", "may_rotate", "unknown_models"]


@dataclass(frozen=True, slots=True)
class Creator:
    """The credential asking for a key, as plain values."""

    ephemeral: bool
    models: frozenset[str] | None  # its allow-list; None: every model of the tier
    expires_at: float | None  # when it stops working; None for tokens and keys that never expire


@dataclass(frozen=True, slots=True)
class KeyGrant:
    lifetime: float
    models: tuple[str, ...] | None
    ends_by: float | None = None  # the creator's own end, which the new key may not pass


def _no_ephemeral(creator: Creator, action: str) -> None:
    if creator.ephemeral:
        raise PermissionDeniedError(
            f"An ephemeral key cannot {action} keys; use a long-lived key or an identity provider's token.",
            code="ephemeral_key_cannot_create",
        )


def grant_key(
    creator: Creator,
    *,
    lifetime: float,
    requested_lifetime: bool,
    models: Collection[str] | None,
    tier: str,
    tier_models: Collection[str],
    now: float,
) -> KeyGrant:
    """The key to create, or an error naming the rule it would break.

    ``lifetime`` is what the tier's rules grant (already capped); ``requested_lifetime`` says whether the
    caller asked for it; ``tier_models`` are the models the caller's tier may use.
    """
    _no_ephemeral(creator, "create")
    if creator.expires_at is not None:
        remaining = max(creator.expires_at - now, 0.0)
        if lifetime > remaining:
            if requested_lifetime:
                raise PermissionDeniedError(
                    "A key may not outlive the credential that creates it, which stops working in "
                    f"{format_duration(remaining)}; ask for that or less in `expiresIn`.",
                    code="key_outlives_creator",
                )
            lifetime = remaining
    if models is None:
        if creator.models is None:
            return KeyGrant(lifetime, None, creator.expires_at)
        models = tuple(sorted(set(creator.models) & set(tier_models)))
        return KeyGrant(lifetime, models, creator.expires_at)
    for model in models:
        if model not in tier_models:
            raise PermissionDeniedError(
                f"The model '{model}' is not available on the tier '{tier}'.", code="model_not_allowed"
            )
        if creator.models is not None and model not in creator.models:
            raise PermissionDeniedError(
                f"The model '{model}' is outside the allow-list of the key that creates this one.",
                code="model_not_allowed",
            )
    return KeyGrant(lifetime, tuple(dict.fromkeys(models)), creator.expires_at)


def may_rotate(creator: Creator, *, key_models: Collection[str] | None, key_ends_at: float | None) -> None:
    """Refuse, naming why, when ``creator`` could not have created the key it wants to rotate."""
    _no_ephemeral(creator, "rotate")
    wider_models = creator.models is not None and (
        key_models is None or not set(key_models) <= creator.models
    )
    outlives = creator.expires_at is not None and (key_ends_at is None or key_ends_at > creator.expires_at)
    if wider_models or outlives:
        raise PermissionDeniedError(
            "This credential cannot rotate a key that allows more models or lives longer than itself.",
            code="key_stronger_than_creator",
        )


def unknown_models(models: Collection[str], known: Collection[str]) -> None:
    for model in models:
        if model not in known:
            raise InvalidRequestError(f"The model '{model}' does not exist.", param="models")
