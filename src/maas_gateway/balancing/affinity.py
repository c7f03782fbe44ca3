"""Which backend an affinity key belongs to: weighted rendezvous (highest random weight) hashing.

Every backend gets a pseudo-random score from the key and its own seed; the highest wins. When a backend
leaves the candidates (ejected, unhealthy) only its keys move, spread over the others, and they come back
when it does; no ring has to be rebuilt when the set of available backends changes from one request to the
next. The hash is stable across processes (not Python's salted ``hash``), so every replica and worker sends
a key to the same backend, whose prefix cache then holds it.

Hashing costs microseconds per pick, and affinity keys repeat (that is their point), so a picker keeps the
scores of its most recent keys in an ``AffinityScores``: a pick with a known key is a few dictionary
lookups.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

from maas_gateway.balancing.backend import BackendState

__all__ = ["AffinityScores", "affinity_hash", "rendezvous_index", "rendezvous_score"]

_MASK = (1 << 64) - 1


def affinity_hash(key: str) -> int:
    """A 64-bit hash of an affinity key (e.g. the first part of a system prompt), the same everywhere."""
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "big")


def rendezvous_score(key_hash: int, backend: BackendState) -> float:
    """The pair's score: the highest among the candidates gets the key; weight 2 wins twice as often."""
    # A uniform number in (0, 1) from the pair; -weight / ln(u) is the weighted rendezvous score.
    uniform = ((_mix(key_hash ^ backend.rendezvous_seed) >> 11) + 0.5) / (1 << 53)
    return -backend.weight / math.log(uniform)


def rendezvous_index(key_hash: int, candidates: Sequence[BackendState]) -> int:
    """The index of the candidate ``key_hash`` belongs to."""
    scores = [rendezvous_score(key_hash, backend) for backend in candidates]
    return scores.index(max(scores))


class AffinityScores:
    """``rendezvous_index`` for string keys, remembering the scores of the last ``max_keys`` keys."""

    def __init__(self, max_keys: int = 4096) -> None:
        self.max_keys = max_keys
        self._by_key: dict[str, tuple[int, dict[BackendState, float]]] = {}

    def __len__(self) -> int:
        """How many keys are remembered."""
        return len(self._by_key)

    def preferred(self, key: str, candidates: Sequence[BackendState]) -> int:
        """The index of the candidate ``key`` belongs to."""
        known = self._by_key.get(key)
        if known is None:
            if len(self._by_key) >= self.max_keys:
                del self._by_key[next(iter(self._by_key))]  # the oldest key: keys that repeat come back
            known = self._by_key[key] = (affinity_hash(key), {})
        key_hash, scores = known
        best_index, best_score = 0, -math.inf
        for index, backend in enumerate(candidates):
            score = scores.get(backend)
            if score is None:
                score = scores[backend] = rendezvous_score(key_hash, backend)
            if score > best_score:
                best_index, best_score = index, score
        return best_index


def _mix(value: int) -> int:
    """SplitMix64's finalizer: every bit of the input affects every bit of the output."""
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK
    return value ^ (value >> 31)
