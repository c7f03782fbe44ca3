"""Failed sign-ins throttled per account and per client address (the same token buckets as API keys).

Per account stops guessing one account's password from many addresses; per address stops one address
from trying many accounts. Either refusing is a 429 page until its allowance refills. Names are folded
(case and Unicode form) so ``Dev1`` and ``dev1`` share one allowance.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from maas_gateway.auth.key_repository import fold
from maas_gateway.auth.throttle import FailureThrottle
from maas_gateway.config.portal_settings import SignInThrottleSettings

__all__ = ["SignInThrottle"]

logger = logging.getLogger("maas_gateway.portal")


class SignInThrottle:
    def __init__(self, settings: SignInThrottleSettings, clock: Callable[[], float] = time.monotonic) -> None:
        def bucket() -> FailureThrottle:
            return FailureThrottle(burst=settings.burst, per=settings.per, max_addresses=settings.max_entries)

        self.accounts = bucket()
        self.addresses = bucket()
        self._clock = clock

    def retry_after(self, account: str, address: str) -> float:
        """Seconds until a sign-in for ``account`` from ``address`` may be tried; 0.0 when it may now."""
        now = self._clock()
        return max(self.accounts.retry_after(fold(account), now), self.addresses.retry_after(address, now))

    def failed(self, account: str, address: str) -> None:
        """Count a failed sign-in; log (once per episode) when the account or the address starts being
        refused. Neither the password nor anything derived from it is logged."""
        now = self._clock()
        if self.accounts.failed(fold(account), now):
            logger.warning("Too many failed portal sign-ins for account %r: refused for a while.", account)
        if self.addresses.failed(address, now):
            logger.warning("Too many failed portal sign-ins from %s: refused for a while.", address)

    def address_retry_after(self, address: str) -> float:
        """Seconds until a sign-in from ``address`` may be tried (for sign-ins that name no account yet,
        such as an identity provider's callback); 0.0 when it may now."""
        return self.addresses.retry_after(address, self._clock())

    def address_failed(self, address: str) -> None:
        """Count a failed sign-in that names no account (a refused identity provider callback)."""
        if self.addresses.failed(address, self._clock()):
            logger.warning("Too many failed portal sign-ins from %s: refused for a while.", address)
