"""One streaming book per (venue, symbol): normalised updates, reconnects, resyncs, staleness.

The feed owns the stream's failure handling so nothing downstream has to:

* a sequence gap (:class:`BookGap`) → count it and watch again at once: the venue takes
  a fresh snapshot and resynchronises;
* a failed connection (:class:`VenueUnavailable`) → count a reconnect and watch again
  after an exponential backoff with full jitter (capped), reset by the next update;
* a silent stream (no update for ``stall_after_s``) → count a stall, drop the venue's
  stream connections, and reconnect.

A venue without websocket books (``Venue.poll_interval_s`` set) is polled instead: one
REST snapshot per interval through the venue's shared rate limit, each one an update;
a failed or rate-limited request backs off like a reconnect, a malformed (e.g. crossed)
snapshot counts as a gap and is dropped, a request slower than ``stall_after_s`` is a
stall.

Every update becomes one :class:`BookUpdate` handed synchronously to ``on_update`` (the
engine). ``on_event`` hears ``"live"`` (first update), ``"gap"``, ``"reconnect"``,
``"stall"`` and ``"resumed"`` (first update after any of those).
:meth:`BookFeed.is_stale` tells strategies and risk whether the latest book is older
than ``max_book_age_ms``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from arbot.model import Level, OrderBook
from arbot.venues.base import Venue
from arbot.venues.errors import BookGap, RateLimited, VenueUnavailable


@dataclass(slots=True)
class BookUpdate:
    """A normalised L2 top-of-book: bids descending, asks ascending, ``depth`` levels.

    Treat it as immutable: it is shared by the engine, the recorder and strategies. (Not
    a frozen dataclass only because frozen ones cost 4x as much to build, on the path
    every update takes.)"""

    venue: str
    symbol: str
    bids: list[Level]
    asks: list[Level]
    exchange_ms: int | None
    received_ns: int
    sequence: int | None


@dataclass(slots=True)
class FeedStats:
    """Counters of one feed; rates and ages are computed when asked."""

    updates: int = 0
    gaps: int = 0
    reconnects: int = 0
    stalls: int = 0
    rate_limited: int = 0
    started_ns: int = 0
    last_received_ns: int = 0
    last_exchange_ms: int | None = None
    last_latency_ms: float | None = None

    def updates_per_s(self, now_ns: int) -> float:
        elapsed = (now_ns - self.started_ns) / 1e9
        return self.updates / elapsed if elapsed > 0 else 0.0

    def age_ms(self, now_ns: int) -> float | None:
        return None if not self.last_received_ns else (now_ns - self.last_received_ns) / 1e6


class BookFeed:
    """Streams one symbol of one venue until cancelled."""

    def __init__(
        self,
        venue: Venue,
        symbol: str,
        on_update: Callable[[BookUpdate], None],
        *,
        depth: int = 20,
        max_book_age_ms: float = 1000.0,
        stall_after_s: float = 10.0,
        backoff_initial_s: float = 0.1,
        backoff_max_s: float = 30.0,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        self.venue = venue
        self.symbol = symbol
        self.on_update = on_update
        self.depth = depth
        self.max_book_age_ms = max_book_age_ms
        self.stall_after_s = stall_after_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.stats = FeedStats()
        self._rng = rng or random.Random()
        self._sleep = sleep
        self._backoff = backoff_initial_s
        self._on_event = on_event
        self._interrupted = False
        self._progress_ns = 0
        self._restarting = False

    def _event(self, kind: str) -> None:
        """Tell the owner about a gap, stall or reconnect (progress displays, logs, tests)."""
        if kind in ("gap", "reconnect", "stall"):
            self._interrupted = True
        if self._on_event is not None:
            self._on_event(kind)

    @property
    def name(self) -> str:
        return f"{self.venue.name}:{self.symbol}"

    def is_stale(self, now_ns: int | None = None) -> bool:
        """True when no update arrived within ``max_book_age_ms`` (or none ever)."""
        age = self.stats.age_ms(time.time_ns() if now_ns is None else now_ns)
        return age is None or age > self.max_book_age_ms

    async def run(self) -> None:
        self.stats.started_ns = time.time_ns()
        if self.venue.poll_interval_s is not None:
            await self._poll(self.venue.poll_interval_s)
            return
        # A watchdog task, not a timeout per watch: wait_for would cost a task and a timer
        # per update and delay the next watch by two loop passes (scripts/bench_feed.py).
        # On a stall the watchdog drops the venue's streams and cancels the stream task
        # (a watch pending on a closed connection may never return); it is started again.
        current = asyncio.current_task()
        while True:
            self._progress_ns = time.time_ns()
            stream = asyncio.create_task(self._stream(), name=f"stream-{self.name}")
            watchdog = asyncio.create_task(self._watchdog(stream), name=f"watchdog-{self.name}")
            try:
                await stream
            except asyncio.CancelledError:
                if not self._restarting or (current is not None and current.cancelling()):
                    raise  # not the watchdog's restart: run() itself is being cancelled
                await watchdog  # it is dropping the venue's connections
                self._restarting = False
                self.stats.reconnects += 1  # the watchdog restarted a silent stream
            finally:
                watchdog.cancel()

    async def _stream(self) -> None:
        while True:
            try:
                book = await self.venue.watch_order_book(self.symbol, self.depth)
            except BookGap:
                self.stats.gaps += 1
                self._event("gap")
                self._progress_ns = time.time_ns()
                continue  # watching again resubscribes and takes a fresh snapshot
            except VenueUnavailable as exc:
                self.stats.reconnects += 1
                if isinstance(exc, RateLimited):
                    self.stats.rate_limited += 1
                self._event("reconnect")
                await self._back_off()
                self._progress_ns = time.time_ns()
                continue
            self._progress_ns = book.received_ns
            self._emit(book)

    async def _watchdog(self, stream: asyncio.Task[None]) -> None:
        """Count a stall when nothing arrived for ``stall_after_s``: drop the venue's
        streams and cancel ``stream`` so that :meth:`run` watches again."""
        limit_ns = int(self.stall_after_s * 1e9)
        interval = min(1.0, self.stall_after_s / 4)
        while True:
            await asyncio.sleep(interval)
            if time.time_ns() - self._progress_ns > limit_ns:
                self.stats.stalls += 1
                self._event("stall")
                self._restarting = True
                stream.cancel()  # first: closing the connections fails the pending watch
                await self.venue.reset_streams()
                return

    async def _poll(self, interval_s: float) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            try:
                book = await asyncio.wait_for(
                    self.venue.fetch_order_book(self.symbol, self.depth), self.stall_after_s
                )
            except TimeoutError:
                self.stats.stalls += 1
                self._event("stall")
                next_at = loop.time()
                continue
            except VenueUnavailable as exc:
                self.stats.reconnects += 1
                if isinstance(exc, RateLimited):
                    self.stats.rate_limited += 1
                self._event("reconnect")
                await self._back_off()
                next_at = loop.time()
                continue
            except ValueError:  # a malformed snapshot (OrderBook.checked): skip it
                self.stats.gaps += 1
                self._event("gap")
            else:
                self._emit(book)
            next_at += interval_s
            delay = next_at - loop.time()
            if delay > 0:
                await self._sleep(delay)
            else:
                next_at = loop.time()  # behind (slow venue): poll again now, no burst

    def _emit(self, book: OrderBook) -> None:
        self._backoff = self.backoff_initial_s
        stats = self.stats
        stats.updates += 1
        if stats.updates == 1 or self._interrupted:
            self._interrupted = False
            self._event("live" if stats.updates == 1 else "resumed")
        stats.last_received_ns = book.received_ns
        stats.last_exchange_ms = book.timestamp_ms
        if book.timestamp_ms is not None:
            stats.last_latency_ms = book.received_ns / 1e6 - book.timestamp_ms
        self.on_update(
            BookUpdate(
                self.venue.name,
                self.symbol,
                book.bids,
                book.asks,
                book.timestamp_ms,
                book.received_ns,
                book.sequence,
            )
        )

    async def _back_off(self) -> None:
        delay = self._rng.uniform(0.0, self._backoff)  # full jitter
        self._backoff = min(self._backoff * 2.0, self.backoff_max_s)
        await self._sleep(delay)


def log_feed_events(feed: str) -> Callable[[str], None]:
    """An ``on_event`` that logs a feed's events: a gap, reconnect or stall is a warning."""
    from loguru import logger

    def log(kind: str) -> None:
        if kind in ("live", "resumed"):
            logger.info("feed {}: {}", feed, kind)
        else:
            logger.warning("feed {}: {}", feed, kind)

    return log
