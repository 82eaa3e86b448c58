"""Randomness sources: the OS, or a seed-driven stream for golden vectors.

Every function that needs random bytes takes an ``Rng`` (``n -> n bytes``)
defaulting to ``os.urandom``; vectors inject :class:`DeterministicRng` so the
same seed reproduces the same files (docs/security.md §13).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable

__all__ = ["DeterministicRng", "Rng", "system_rng"]

Rng = Callable[[int], bytes]


def system_rng(n: int) -> bytes:
    return os.urandom(n)


class DeterministicRng:
    """``SHA-256(seed ‖ u64(0)) ‖ SHA-256(seed ‖ u64(1)) ‖ …`` consumed in order. Tests only."""

    def __init__(self, seed: bytes) -> None:
        self._seed = seed
        self._counter = 0
        self._buf = b""

    def __call__(self, n: int) -> bytes:
        while len(self._buf) < n:
            self._buf += hashlib.sha256(self._seed + self._counter.to_bytes(8, "big")).digest()
            self._counter += 1
        out, self._buf = self._buf[:n], self._buf[n:]
        return out
