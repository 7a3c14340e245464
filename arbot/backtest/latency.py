"""Latency models: a constant, or a constant plus a seeded random part.

One :class:`Latency` per venue and kind (market data, orders), each with its own
random stream seeded from ``(seed, venue, kind)``, so adding a venue or sending one
more order on one venue does not change the draws of another. Draws are rounded to
whole nanoseconds. Distributions of the random part (``jitter_ms``):

* ``uniform``: uniform in ``[0, jitter_ms]``;
* ``exponential``: exponential with mean ``jitter_ms`` (a long tail of slow ones);
* ``normal``: ``ms + N(0, jitter_ms)``, clipped at zero.

With ``jitter_ms = 0`` nothing is drawn: the latency is ``ms``.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from arbot.config import LatencyConfig

_NS_PER_MS = 1_000_000


class Latency:
    """Draws latencies in ns; see the module docstring."""

    __slots__ = ("_base_ns", "_distribution", "_jitter_ms", "_rng", "constant")

    def __init__(
        self,
        ms: float = 0.0,
        jitter_ms: float = 0.0,
        distribution: str = "uniform",
        *,
        seed: str = "",
    ) -> None:
        if ms < 0 or jitter_ms < 0:
            raise ValueError("latency and jitter must not be negative")
        if distribution not in ("uniform", "normal", "exponential"):
            raise ValueError(f"unknown latency distribution {distribution!r}")
        self._base_ns = round(ms * _NS_PER_MS)
        self._jitter_ms = jitter_ms
        self._distribution = distribution
        self.constant = jitter_ms == 0
        """``True``: every draw is the same (no random numbers are used)."""
        self._rng = random.Random(seed)  # str seeds hash with SHA-512: stable everywhere

    @classmethod
    def from_config(cls, config: LatencyConfig, *, seed: int, venue: str, kind: str) -> Latency:
        return cls(config.ms, config.jitter_ms, config.distribution, seed=f"{seed}/{venue}/{kind}")

    @property
    def is_zero(self) -> bool:
        return self.constant and self._base_ns == 0

    def sample_ns(self) -> int:
        """One latency, in ns."""
        if self.constant:
            return self._base_ns
        jitter = self._jitter_ms
        if self._distribution == "uniform":
            extra = self._rng.uniform(0.0, jitter)
        elif self._distribution == "exponential":
            extra = self._rng.expovariate(1.0 / jitter)
        else:
            extra = self._rng.gauss(0.0, jitter)
        return max(0, self._base_ns + round(extra * _NS_PER_MS))


__all__ = ["Latency"]
