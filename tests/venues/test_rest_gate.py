"""The REST gate against the simulator: one throttle per venue, 429/418 counted and backed off."""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal

import pytest

from arbot.config import VenueConfig
from arbot.keys.guard import PermissionGuard
from arbot.model import Order, OrderType, Side, TimeInForce
from arbot.sim.server import SimServer
from arbot.testing import sim_venue_config
from arbot.venues.ccxt_venue import CcxtVenue
from arbot.venues.errors import OrderRejected, RateLimited
from arbot.venues.rest import RestGate


def market_data_venue(server: SimServer, name: str, rate: float | None = None) -> CcxtVenue:
    config = VenueConfig(
        exchange=server.venues[name].protocol,
        symbols=["BTC/USDT"],
        endpoint=server.venue_url(name),
        rate_limit=rate,
    )
    return CcxtVenue(name, config, None)


@pytest.mark.parametrize("name", ["binance", "okx"])
async def test_rate_limit_answers_are_counted_backed_off_and_retried(
    frozen_sim: SimServer, name: str
) -> None:
    venue = market_data_venue(frozen_sim, name)
    delays: list[float] = []

    async def no_wait(delay: float) -> None:
        delays.append(delay)

    venue.rest = RestGate(name, 50, rng=random.Random(1), sleep=no_wait)
    try:
        await venue.load_markets()
        frozen_sim.venues[name].faults.rest_errors = [429, 418]
        book = await venue.fetch_order_book("BTC/USDT", 5)
        assert book.best_bid is not None
        assert venue.rest.stats.rate_limited == 2
        assert venue.rest.stats.retries == 2
        assert len(delays) == 2
        assert 0 <= delays[0] <= 0.5  # full jitter under a ceiling that doubles
        assert 0 <= delays[1] <= 1.0

        frozen_sim.venues[name].faults.rest_errors = [429] * 10
        with pytest.raises(RateLimited, match=f"{name}: rate limited"):
            await venue.fetch_order_book("BTC/USDT", 5)
        assert venue.rest.stats.rate_limited == 2 + 5  # first try and four retries
    finally:
        await venue.close()


async def test_orders_are_never_retried_after_a_rate_limit(frozen_sim: SimServer) -> None:
    guard = PermissionGuard(300, warn=lambda message: None)
    venue = CcxtVenue("binance", sim_venue_config(frozen_sim, "binance"), guard)
    try:
        await venue.load_markets()
        await guard.require("binance")
        frozen_sim.venues["binance"].faults.rest_errors = [429]
        order = Order(
            "once1",
            "",
            "BTC/USDT",
            Side.BUY,
            OrderType.LIMIT,
            Decimal("0.001"),
            Decimal("100000"),
            TimeInForce.IOC,
        )
        with pytest.raises(RateLimited):
            await venue.create_order(order)
        assert venue.rest.stats.retries == 0
        assert frozen_sim.venues["binance"].orders == {}
        with pytest.raises(OrderRejected, match="InsufficientFunds"):
            await venue.create_order(
                Order(
                    "big1",
                    "",
                    "BTC/USDT",
                    Side.BUY,
                    OrderType.LIMIT,
                    Decimal("1000"),
                    Decimal("100000"),
                    TimeInForce.IOC,
                )
            )
    finally:
        await venue.close()


async def test_the_throttle_is_shared_by_every_task_of_a_venue(frozen_sim: SimServer) -> None:
    venue = market_data_venue(frozen_sim, "binance", rate=40)
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await asyncio.gather(*(venue.fetch_order_book("BTC/USDT", 1) for _ in range(60)))
        elapsed = loop.time() - started
        assert elapsed >= 0.95  # 60 calls at 40/s: the last 20 waited for the window
        assert venue.rest.stats.requests == 60
    finally:
        await venue.close()
