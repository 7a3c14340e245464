"""Book feeds against the simulator: updates equal the exchange's book, and every stream
failure (dropped connection, sequence gap, silent stream) recovers and is counted."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest

from arbot.config import VenueConfig
from arbot.feeds.book_feed import BookFeed, BookUpdate
from arbot.model import Balance, Fill, Market, Order, OrderBook
from arbot.sim.server import SimServer
from arbot.venues.base import Venue
from arbot.venues.ccxt_venue import CcxtVenue
from arbot.venues.errors import RateLimited, VenueUnavailable

VENUES = ["binance", "okx"]
DEPTH = 10


class Harness:
    def __init__(
        self, feed: BookFeed, queue: asyncio.Queue[BookUpdate], events: asyncio.Queue[str]
    ) -> None:
        self.feed = feed
        self.queue = queue
        self.events = events

    async def event(self, kind: str) -> None:
        while await asyncio.wait_for(self.events.get(), timeout=10) != kind:
            pass

    async def until(self, server: SimServer, venue: str, symbol: str) -> BookUpdate:
        """The first update that carries the simulator's current book (by sequence)."""
        target = server.venues[venue].update_ids[symbol]
        while True:
            update = await asyncio.wait_for(self.queue.get(), timeout=10)
            if update.sequence is not None and update.sequence >= target:
                return update

    async def until_book(self, server: SimServer, venue: str, symbol: str) -> BookUpdate:
        """The first update equal to the simulator's current (frozen) book; for polled
        venues, whose REST books may carry no sequence (OKX)."""
        wanted = top(server, venue, symbol)
        while True:
            update = await asyncio.wait_for(self.queue.get(), timeout=10)
            if (update.bids, update.asks) == wanted:
                return update


@contextlib.asynccontextmanager
async def streaming(
    server: SimServer, venue: str, symbol: str, *, poll_ms: float | None = None, **options: Any
) -> AsyncIterator[Harness]:
    config = VenueConfig(
        exchange=server.venues[venue].protocol,
        symbols=[symbol],
        endpoint=server.venue_url(venue),
        book_source="stream" if poll_ms is None else "poll",
        poll_interval_ms=poll_ms or 1000,
    )
    ccxt_venue = CcxtVenue(venue, config, None)
    queue: asyncio.Queue[BookUpdate] = asyncio.Queue()
    events: asyncio.Queue[str] = asyncio.Queue()
    feed = BookFeed(
        ccxt_venue, symbol, queue.put_nowait, depth=DEPTH, on_event=events.put_nowait, **options
    )
    task = asyncio.create_task(feed.run())
    try:
        yield Harness(feed, queue, events)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await ccxt_venue.close()


def top(
    server: SimServer, venue: str, symbol: str
) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    _, bids, asks = server.venues[venue].snapshot(symbol, DEPTH)
    return [(float(p), float(q)) for p, q in bids], [(float(p), float(q)) for p, q in asks]


@pytest.mark.parametrize("venue", VENUES)
async def test_updates_carry_the_exchanges_top_of_book(frozen_sim: SimServer, venue: str) -> None:
    async with streaming(frozen_sim, venue, "BTC/USDT") as h:
        for step in range(50):
            frozen_sim.step(venue, symbol="BTC/USDT")
            update = await h.until(frozen_sim, venue, "BTC/USDT")
            assert (update.bids, update.asks) == top(frozen_sim, venue, "BTC/USDT")
            assert update.venue == venue
            if step:  # a REST snapshot (Binance's first book) carries no exchange time
                assert update.exchange_ms is not None
        stats = h.feed.stats
        assert stats.updates >= 50
        assert stats.gaps == stats.reconnects == 0
        assert stats.last_latency_ms is not None
        assert -5 < stats.last_latency_ms < 1000
        assert not h.feed.is_stale()


@pytest.mark.parametrize("venue", VENUES)
async def test_a_dropped_connection_reconnects_and_resumes(
    frozen_sim: SimServer, venue: str
) -> None:
    async with streaming(frozen_sim, venue, "ETH/USDT", backoff_initial_s=0.01) as h:
        frozen_sim.step(venue, symbol="ETH/USDT")
        await h.until(frozen_sim, venue, "ETH/USDT")
        for connection in list(frozen_sim.protocols[venue].connections):
            connection.close_soon()
        frozen_sim.step(venue, count=3, symbol="ETH/USDT")
        update = await h.until(frozen_sim, venue, "ETH/USDT")
        assert (update.bids, update.asks) == top(frozen_sim, venue, "ETH/USDT")
        assert h.feed.stats.reconnects >= 1


@pytest.mark.parametrize("venue", VENUES)
async def test_a_sequence_gap_is_counted_and_resynchronised(
    frozen_sim: SimServer, venue: str
) -> None:
    async with streaming(frozen_sim, venue, "BTC/USDT") as h:
        frozen_sim.step(venue, symbol="BTC/USDT")
        await h.until(frozen_sim, venue, "BTC/USDT")
        frozen_sim.venues[venue].faults.skip_sequence = 1
        frozen_sim.step(venue, count=2, symbol="BTC/USDT")
        update = await h.until(frozen_sim, venue, "BTC/USDT")
        assert (update.bids, update.asks) == top(frozen_sim, venue, "BTC/USDT")
        assert h.feed.stats.gaps == 1


@pytest.mark.parametrize("venue", VENUES)
async def test_a_silent_stream_is_detected_and_reconnected(
    frozen_sim: SimServer, venue: str
) -> None:
    sim_venue = frozen_sim.venues[venue]
    async with streaming(
        frozen_sim, venue, "BTC/USDT", stall_after_s=0.3, max_book_age_ms=200
    ) as h:
        frozen_sim.step(venue, symbol="BTC/USDT")
        await h.until(frozen_sim, venue, "BTC/USDT")
        sim_venue.faults.ws_stall = True
        sim_venue.notify_faults()
        frozen_sim.step(venue, symbol="BTC/USDT")
        await h.event("stall")  # the feed's own stall timer fired
        assert h.feed.stats.stalls >= 1
        assert h.feed.is_stale()
        sim_venue.faults.ws_stall = False
        sim_venue.notify_faults()
        frozen_sim.step(venue, symbol="BTC/USDT")
        update = await h.until(frozen_sim, venue, "BTC/USDT")
        assert (update.bids, update.asks) == top(frozen_sim, venue, "BTC/USDT")
        assert h.feed.stats.reconnects >= 1
        assert not h.feed.is_stale()


@pytest.mark.parametrize("venue", VENUES)
async def test_a_polled_venue_follows_the_exchange_book(frozen_sim: SimServer, venue: str) -> None:
    async with streaming(frozen_sim, venue, "BTC/USDT", poll_ms=50) as h:
        assert h.feed.venue.poll_interval_s == pytest.approx(0.05)
        for _ in range(5):
            frozen_sim.step(venue, symbol="BTC/USDT")
            await h.until_book(frozen_sim, venue, "BTC/USDT")
        assert not frozen_sim.protocols[venue].connections  # no websocket was opened
        assert h.feed.stats.reconnects == h.feed.stats.gaps == 0
        assert not h.feed.is_stale()


async def test_polling_backs_off_on_failed_requests_and_recovers(frozen_sim: SimServer) -> None:
    async with streaming(frozen_sim, "okx", "ETH/USDT", poll_ms=50, backoff_initial_s=0.01) as h:
        frozen_sim.step("okx", symbol="ETH/USDT")
        await h.until_book(frozen_sim, "okx", "ETH/USDT")
        frozen_sim.venues["okx"].faults.rest_errors = [503, 500]
        await h.event("reconnect")
        await h.event("reconnect")
        frozen_sim.step("okx", symbol="ETH/USDT")
        await h.until_book(frozen_sim, "okx", "ETH/USDT")
        assert h.feed.stats.reconnects == 2


def test_stream_is_refused_where_ccxt_has_no_websocket_book() -> None:
    from arbot.errors import ConfigError

    config = VenueConfig(exchange="bitflyer", symbols=["BTC/JPY"], book_source="stream")
    with pytest.raises(ConfigError, match=r"book_source: ccxt has no websocket order book"):
        CcxtVenue("bitflyer", config, None)
    auto = CcxtVenue("bitflyer", config.model_copy(update={"book_source": "auto"}), None)
    assert auto.poll_interval_s == 1.0


def test_staleness_follows_the_configured_age() -> None:
    feed = BookFeed(FailingVenue([]), "BTC/USDT", lambda u: None, max_book_age_ms=500)
    assert feed.is_stale(now_ns=10**18)  # nothing received yet
    feed.stats.last_received_ns = 10**18
    assert not feed.is_stale(now_ns=10**18 + 499_000_000)
    assert feed.is_stale(now_ns=10**18 + 501_000_000)


class FailingVenue(Venue):
    """A venue whose stream fails in a scripted way (unit test of the backoff policy)."""

    name = "failing"

    def __init__(self, failures: list[Exception]) -> None:
        self.failures = failures

    async def watch_order_book(self, symbol: str, depth: int) -> OrderBook:
        if self.failures:
            raise self.failures.pop(0)
        raise asyncio.CancelledError

    async def reset_streams(self) -> None:
        return None

    async def load_markets(self) -> dict[str, Market]:
        raise NotImplementedError

    async def fetch_balances(self) -> dict[str, Balance]:
        raise NotImplementedError

    async def fetch_order_book(self, symbol: str, limit: int = 20) -> OrderBook:
        raise NotImplementedError

    async def create_order(self, order: Order) -> Order:
        raise NotImplementedError

    async def cancel_order(self, order: Order) -> Order:
        raise NotImplementedError

    async def fetch_order(self, order: Order) -> Order:
        raise NotImplementedError

    async def fetch_order_fills(self, order: Order) -> list[Fill]:
        raise NotImplementedError

    async def fetch_open_orders(self, symbol: str | None = None) -> list[Order]:
        raise NotImplementedError

    async def close(self) -> None:
        return None


async def test_reconnects_back_off_exponentially_with_jitter_and_a_cap() -> None:
    failures: list[Exception] = [VenueUnavailable("failing", "down")] * 8 + [
        RateLimited("failing", "429")
    ]
    delays: list[float] = []

    async def record(delay: float) -> None:
        delays.append(delay)

    feed = BookFeed(
        FailingVenue(list(failures)),
        "BTC/USDT",
        lambda u: None,
        backoff_initial_s=0.1,
        backoff_max_s=2.0,
        rng=random.Random(4),
        sleep=record,
    )
    with pytest.raises(asyncio.CancelledError):
        await feed.run()
    caps = [min(0.1 * 2**i, 2.0) for i in range(9)]
    assert len(delays) == 9
    assert all(0 <= d <= cap for d, cap in zip(delays, caps, strict=True))
    assert max(delays[5:]) > 0.4  # the ceiling grew
    assert feed.stats.reconnects == 9
    assert feed.stats.rate_limited == 1
