"""When one issuer's signing keys are fresh, stale, still trusted, and when they may be fetched again.

Plain arithmetic on times from a monotonic clock, so the refresh policy is tested without waiting:

- Keys younger than ``cache_ttl`` are fresh; older ones are stale but still verify tokens while a refresh
  runs in the background, up to ``max_stale_age``; older keys are not trusted at all.
- Fetches of one issuer start at least ``min_refresh_interval`` apart, so tokens with made-up key ids
  cannot make the gateway hammer the identity provider.
- After failed fetches the wait doubles (``min_refresh_interval``, twice that, ...) up to ``cache_ttl``,
  sparing a struggling provider, but only while trusted keys are at hand: without them every token of the
  issuer is refused, so the fetch is retried every ``min_refresh_interval`` to recover within one.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RefreshSchedule"]


@dataclass
class RefreshSchedule:
    cache_ttl: float
    min_refresh_interval: float
    max_stale_age: float
    fetched_at: float | None = None  # of the last successful fetch
    attempted_at: float | None = None  # when the last fetch started, or failed if it did
    failures: int = 0  # failed fetches since the last successful one

    def stale(self, now: float) -> bool:
        """Whether a refresh is due (always, before the first successful fetch)."""
        return self.fetched_at is None or now - self.fetched_at >= self.cache_ttl

    def trusted(self, now: float) -> bool:
        """Whether the fetched keys may still verify tokens."""
        return self.fetched_at is not None and now - self.fetched_at < self.max_stale_age

    def retry_delay(self, now: float) -> float:
        """The least time from the last fetch's start (or failure) to the next fetch's start."""
        if self.failures == 0 or not self.trusted(now):
            return self.min_refresh_interval
        ceiling = max(self.cache_ttl, self.min_refresh_interval)
        return min(self.min_refresh_interval * (1 << min(self.failures - 1, 30)), ceiling)

    def may_fetch(self, now: float) -> bool:
        return self.attempted_at is None or now - self.attempted_at >= self.retry_delay(now)

    def started(self, now: float) -> None:
        self.attempted_at = now

    def succeeded(self, now: float) -> None:
        self.fetched_at = now
        self.failures = 0

    def failed(self, now: float) -> None:
        # Counted from the failure, so a provider that hangs until the timeout still gets its rest.
        self.attempted_at = now
        self.failures += 1
