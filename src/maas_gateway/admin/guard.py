"""The admin credential: one key, from the configuration (as a digest) or the environment.

With neither, the admin API is closed: it is never open by default. A key from the environment shorter
than ``MIN_ADMIN_KEY_LENGTH`` characters stops the gateway from starting: the admin key unlocks every
user's keys, and guessing is only throttled, not impossible. A configured digest cannot be checked for
length; docs/identity.md asks for as many random characters.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from maas_gateway.config.loader import ConfigError
from maas_gateway.config.schema import AdminSettings
from maas_gateway.errors import AuthenticationError, PermissionDeniedError

__all__ = ["ADMIN_KEY_ENV", "MIN_ADMIN_KEY_LENGTH", "AdminGuard"]

ADMIN_KEY_ENV = "MAAS_ADMIN_KEY"
MIN_ADMIN_KEY_LENGTH = 32


class AdminGuard:
    def __init__(self, key_sha256: str | None) -> None:
        self._digest = key_sha256

    @classmethod
    def from_config(cls, settings: AdminSettings) -> AdminGuard:
        """The guard for ``settings`` and the environment; ``ConfigError`` for a too short key."""
        if settings.key_sha256 is not None:
            return cls(settings.key_sha256)
        key = os.environ.get(ADMIN_KEY_ENV)
        if key and len(key) < MIN_ADMIN_KEY_LENGTH:
            raise ConfigError(
                f"{ADMIN_KEY_ENV} is {len(key)} characters long, but the admin key must have at least "
                f"{MIN_ADMIN_KEY_LENGTH}. Generate one with `python -c 'import secrets; "
                "print(secrets.token_urlsafe(32))'`; the gateway does not start with a short admin key."
            )
        return cls(hashlib.sha256(key.encode("utf-8")).hexdigest() if key else None)

    @property
    def enabled(self) -> bool:
        return self._digest is not None

    def matches(self, credential: str) -> bool:
        if self._digest is None:
            return False
        presented = hashlib.sha256(credential.encode("utf-8")).hexdigest()
        return hmac.compare_digest(presented, self._digest)

    def check(self, credential: str) -> None:
        """Raise unless ``credential`` is the admin key (compared in constant time)."""
        if self._digest is None:
            raise PermissionDeniedError(
                f"The admin API is disabled: set {ADMIN_KEY_ENV} or admin.key_sha256 to enable it.",
                code="admin_disabled",
            )
        if not self.matches(credential):
            raise AuthenticationError("The admin credential is not valid.", code="invalid_admin_key")
