"""The failed-authentication throttle in front of every credential check, with its clock and its log.

``FailureThrottle`` decides; this class reads the clock, turns a refusal into a 429 and writes the one
WARNING line of a throttling episode. It is shared by the model endpoints (``Pipeline.identify``), the
self-service endpoints and the admin API, so guesses against any of them spend the same allowance.
Neither the credential nor anything derived from it is ever logged.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

from maas_gateway.auth.throttle import FailureThrottle
from maas_gateway.errors import AuthenticationThrottledError

__all__ = ["FailureGate"]

logger = logging.getLogger("maas_gateway.auth")


class FailureGate:
    def __init__(self, throttle: FailureThrottle, clock: Callable[[], float] = time.monotonic) -> None:
        self.throttle = throttle
        self._clock = clock
        self._suspects = throttle.addresses

    def check(self, address: str) -> None:
        """Raise a 429 (with Retry-After) while ``address`` is throttled; call before any credential check."""
        if address not in self._suspects:
            return  # the common case: one dictionary lookup
        wait = self.throttle.retry_after(address, self._clock())
        if wait:
            seconds = math.ceil(wait)
            raise AuthenticationThrottledError(
                "Too many failed authentications came from your address; "
                f"try again in {seconds} second{'' if seconds == 1 else 's'}.",
                retry_after_seconds=seconds,
            )

    def failed(self, address: str) -> None:
        """Count a rejected credential from ``address``; log when this starts a throttling episode."""
        if self.throttle.failed(address, self._clock()):
            logger.warning(
                "Too many failed authentications from %s: its requests are refused (429) until its "
                "allowance of %d attempts per %gs refills.",
                address,
                self.throttle.burst,
                self.throttle.per,
            )
