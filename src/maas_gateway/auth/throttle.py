"""How many failed authentications one client address may make: a token bucket per address.

A plain policy: addresses and times in, decisions out, no HTTP and no clock of its own (the caller passes
``now``, so tests drive time by hand). Each address starts with ``burst`` attempts; every failed
authentication spends one, and they come back at ``burst`` per ``per`` seconds. An address without an
attempt left is throttled: the gateway refuses everything it sends with 429 *before* looking at the
credential, so guessing stops even when a guess would have been right (docs/decisions.md).

Only addresses that failed are remembered, at most ``max_addresses`` of them (the least recently failed
are forgotten first), so a flood of addresses cannot grow the table without bound. A clean address costs
one dictionary lookup per request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["FailureThrottle"]


@dataclass(slots=True)
class _Bucket:
    tokens: float  # attempts left; below 1 the address is throttled
    updated: float  # when ``tokens`` was last brought up to date
    blocked_until: float = 0.0  # refused until then (0: not refused)
    episode: bool = False  # throttled since the bucket was last full: reported once per episode


class FailureThrottle:
    """Token buckets of failed authentications, one per client address, in a bounded table."""

    def __init__(self, *, burst: int, per: float, max_addresses: int) -> None:
        if burst < 1 or per <= 0 or max_addresses < 1:
            raise ValueError("burst and max_addresses must be at least 1, and per longer than zero.")
        self.burst = burst
        self.per = per
        self.max_addresses = max_addresses
        self._rate = burst / per  # attempts regained per second
        # Insertion order is recency of the last failure: the first entry is the one to forget first.
        self._buckets: dict[str, _Bucket] = {}
        # The addresses with recent failures, read-only: ``address in addresses`` is all a clean
        # request costs (no clock read, no call) before ``retry_after`` is worth asking.
        self.addresses: Mapping[str, object] = self._buckets
        self.failures = 0  # failed authentications counted (a metric)
        self.throttled = 0  # attempts refused while throttled (a metric)

    def __len__(self) -> int:
        return len(self._buckets)

    def retry_after(self, address: str, now: float) -> float:
        """Seconds until ``address`` may try again; 0.0 when it may try now.

        Called before every credential check. A refused attempt does not spend anything: the bucket
        refills while an address waits, however often it knocks, so a user behind the same address as
        a guesser gets in again after at most ``per`` seconds of quiet from it.
        """
        bucket = self._buckets.get(address)
        if bucket is None or now >= bucket.blocked_until:
            return 0.0
        self.throttled += 1
        return bucket.blocked_until - now

    def failed(self, address: str, now: float) -> bool:
        """Count a failed authentication from ``address``; True when it starts a throttling episode.

        An episode lasts from the first refusal until the bucket is full again, so a guesser that keeps
        trying at the refill rate is reported once, not at every refill.
        """
        self.failures += 1
        bucket = self._buckets.pop(address, None)
        if bucket is None:
            bucket = _Bucket(float(self.burst), now)
        else:
            bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated) * self._rate)
            bucket.updated = now
            if bucket.tokens >= self.burst:
                bucket.episode = False
        # Attempts that passed the check concurrently may overdraw the bucket; the debt is capped so
        # that a refusal never lasts longer than ``per``.
        bucket.tokens = max(bucket.tokens - 1.0, 1.0 - self.burst)
        self._buckets[address] = bucket  # now the most recent entry
        self._forget_one(now)
        if bucket.tokens >= 1.0:
            return False
        bucket.blocked_until = now + (1.0 - bucket.tokens) / self._rate
        started = not bucket.episode
        bucket.episode = True
        return started

    def _forget_one(self, now: float) -> None:
        """Drop the least recently failed address if over the cap, or if its bucket is full again.

        Checking one entry per failure keeps the table small in normal operation at constant cost; a
        full bucket is the same as no bucket.
        """
        oldest = next(iter(self._buckets))
        bucket = self._buckets[oldest]
        refilled = bucket.tokens + (now - bucket.updated) * self._rate >= self.burst
        if len(self._buckets) > self.max_addresses or refilled:
            del self._buckets[oldest]
