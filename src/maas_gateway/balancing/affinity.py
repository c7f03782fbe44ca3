"""Which backend an affinity key belongs to: weighted rendezvous (highest random weight) hashing.

Every backend gets a pseudo-random score from the key and its own seed; the highest wins. When a backend
leaves the candidates (ejected, unhealthy) only its keys move, spread over the others, and they come back
when it does; no ring has to be rebuilt when the set of available backends changes from one request to the
next. The hash is stable across processes (not Python's salted ``hash``), so every replica and worker sends
a key to the same backend, whose prefix cache then holds it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

from maas_gateway.balancing.backend import BackendState

__all__ = ["affinity_hash", "rendezvous_index"]

_MASK = (1 << 64) - 1


def affinity_hash(key: str) -> int:
    """A 64-bit hash of an affinity key (e.g. the first part of a system prompt), the same everywhere."""
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "big")


def rendezvous_index(key_hash: int, candidates: Sequence[BackendState]) -> int:
    """The index of the candidate ``key_hash`` belongs to; a backend of weight 2 gets twice the keys."""
    best_index, best_score = 0, -math.inf
    for index, backend in enumerate(candidates):
        # A uniform number in (0, 1) from the pair; -weight / ln(u) is the weighted rendezvous score.
        uniform = ((_mix(key_hash ^ backend.rendezvous_seed) >> 11) + 0.5) / (1 << 53)
        score = -backend.weight / math.log(uniform)
        if score > best_score:
            best_index, best_score = index, score
    return best_index


def _mix(value: int) -> int:
    """SplitMix64's finalizer: every bit of the input affects every bit of the output."""
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK
    return value ^ (value >> 31)
