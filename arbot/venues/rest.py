"""Every REST call of a venue goes through one gate: a shared throttle and 429/418 handling.

The throttle (``asyncio-throttle``, a sliding window) is sized from the venue's
``rate_limit`` setting, else from ccxt's ``rateLimit`` (milliseconds between requests),
and is shared by every task that uses the venue. A rate-limit answer (ccxt's
``DDoSProtection`` / ``RateLimitExceeded``, i.e. HTTP 429/418 or the exchange's code) is
counted; idempotent reads back off with full jitter and retry, while order placement is
never retried blindly (a retry could duplicate the order) and raises :class:`RateLimited`.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from asyncio_throttle.throttler import Throttler

from arbot.venues.errors import (
    OrderNotFound,
    OrderRejected,
    RateLimited,
    VenueError,
    VenueUnavailable,
)

T = TypeVar("T")


@dataclass(slots=True)
class RestStats:
    requests: int = 0
    rate_limited: int = 0
    retries: int = 0
    time_syncs: int = 0


class RestGate:
    def __init__(
        self,
        venue: str,
        requests_per_s: float,
        *,
        max_retries: int = 4,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 10.0,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if requests_per_s <= 0:
            raise ValueError("requests_per_s must be positive")
        burst = max(1, round(requests_per_s))
        self.venue = venue
        self.requests_per_s = requests_per_s
        self.throttler = Throttler(rate_limit=burst, period=burst / requests_per_s)
        self.max_retries = max_retries
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.stats = RestStats()
        self._rng = rng or random.Random()
        self._sleep = sleep

    async def call(
        self,
        fn: Callable[..., Awaitable[T]],
        *args: Any,
        idempotent: bool = True,
        resync: Callable[[], Awaitable[object]] | None = None,
        **kwargs: Any,
    ) -> T:
        """Run ``fn(*args, **kwargs)`` under the throttle, translating ccxt's errors.

        ``resync``: for signed calls, how to re-measure the clock offset when the venue
        refuses the request's timestamp; the call is then repeated once.
        """
        import ccxt

        ceiling = self.backoff_initial_s
        attempt = 0
        resynced = False
        while True:
            skewed = False
            async with self.throttler:
                self.stats.requests += 1
                try:
                    return await fn(*args, **kwargs)
                except ccxt.InvalidNonce as exc:
                    if resync is None or resynced:
                        raise VenueUnavailable(
                            self.venue,
                            f"{type(exc).__name__}: {_first_line(exc)} (clock out of sync)",
                        ) from None
                    skewed = True
                except (ccxt.DDoSProtection, ccxt.RateLimitExceeded) as exc:
                    self.stats.rate_limited += 1
                    if not idempotent or attempt >= self.max_retries:
                        raise RateLimited(
                            self.venue, f"rate limited ({type(exc).__name__}); slow down"
                        ) from None
                except ccxt.OrderNotFound as exc:
                    raise OrderNotFound(
                        self.venue, f"{type(exc).__name__}: {_first_line(exc)}"
                    ) from None
                except (ccxt.InsufficientFunds, ccxt.InvalidOrder, ccxt.BadRequest) as exc:
                    raise OrderRejected(
                        self.venue, f"{type(exc).__name__}: {_first_line(exc)}"
                    ) from None
                except ccxt.NetworkError as exc:
                    raise VenueUnavailable(
                        self.venue, f"{type(exc).__name__}: {_first_line(exc)}"
                    ) from None
                except ccxt.ExchangeError as exc:
                    raise VenueError(
                        self.venue, f"{type(exc).__name__}: {_first_line(exc)}"
                    ) from None
            if skewed:
                assert resync is not None
                resynced = True
                self.stats.time_syncs += 1
                await resync()  # outside the throttle: it makes its own call through it
                continue
            attempt += 1
            self.stats.retries += 1
            await self._sleep(self._rng.uniform(0.0, ceiling))  # full jitter
            ceiling = min(ceiling * 2.0, self.backoff_max_s)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
