"""How long the simulated model takes: the delay to a request's first token and between its tokens."""

from __future__ import annotations

import random

__all__ = ["Latency"]


class Latency:
    """Delays drawn from normal distributions around the configured means, never below zero.

    A standard deviation of 0 gives the mean itself and draws nothing from ``rng``, so a seeded
    simulator without jitter answers exactly as before jitter existed (its random mode and failures
    consume the same random numbers).
    """

    __slots__ = ("_first", "_first_std", "_gap", "_gap_std", "_rng", "gapless", "instant")

    def __init__(
        self,
        time_to_first_token: float,
        time_to_first_token_std: float,
        inter_token_latency: float,
        inter_token_latency_std: float,
        rng: random.Random,
    ) -> None:
        self._first, self._first_std = time_to_first_token, time_to_first_token_std
        self._gap, self._gap_std = inter_token_latency, inter_token_latency_std
        self._rng = rng
        # Whether there are no gaps between tokens at all: then they can be counted out at once.
        self.gapless = inter_token_latency == 0 and inter_token_latency_std == 0
        # Whether nothing ever waits: the simulator's fast path.
        self.instant = self.gapless and time_to_first_token == 0 and time_to_first_token_std == 0

    def time_to_first_token(self) -> float:
        return self._draw(self._first, self._first_std)

    def inter_token(self) -> float:
        return self._draw(self._gap, self._gap_std)

    def _draw(self, mean: float, std: float) -> float:
        if std == 0:
            return mean
        return max(0.0, self._rng.gauss(mean, std))
