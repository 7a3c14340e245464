"""ccxt.pro books against the simulator, and every fault the simulator can inject.

Each fault must produce the exception or behaviour ccxt shows against the real
exchange (see docs/sim.md for the mapping).
"""

from __future__ import annotations

import asyncio
from typing import Any

import ccxt
import pytest

from arbot.sim.server import SimServer
from arbot.testing import ccxt_client

VENUES = ["binance", "okx"]


def local_levels(client: Any, symbol: str) -> tuple[list[list[float]], list[list[float]]]:
    book = client.orderbooks[symbol]
    return [lvl[:2] for lvl in book["bids"]], [lvl[:2] for lvl in book["asks"]]


def sim_levels(
    server: SimServer, venue: str, symbol: str
) -> tuple[list[list[float]], list[list[float]]]:
    _, bids, asks = server.venues[venue].snapshot(symbol, None)
    return [[float(p), float(q)] for p, q in bids], [[float(p), float(q)] for p, q in asks]


async def caught_up(client: Any, server: SimServer, venue: str, symbol: str) -> None:
    """Await ccxt.pro updates until its local book has the simulator's latest update id."""
    target = server.venues[venue].update_ids[symbol]
    while symbol not in client.orderbooks or (client.orderbooks[symbol]["nonce"] or 0) < target:
        await asyncio.wait_for(client.watch_order_book(symbol), timeout=5)


@pytest.mark.parametrize("venue", VENUES)
async def test_local_book_equals_the_simulators_after_every_update(
    frozen_sim: SimServer, venue: str
) -> None:
    symbols = ["BTC/USDT", "ETH/BTC"]
    async with ccxt_client(frozen_sim, venue) as ex:
        await ex.load_markets()
        for symbol in symbols:
            await caught_up(ex, frozen_sim, venue, symbol)
        updates = 0
        for step in range(300):
            symbol = symbols[step % 2]
            frozen_sim.step(venue, symbol=symbol)
            await caught_up(ex, frozen_sim, venue, symbol)
            assert local_levels(ex, symbol) == sim_levels(frozen_sim, venue, symbol), f"step {step}"
            updates += 1
        assert updates == 300


@pytest.mark.parametrize("venue", VENUES)
async def test_dropped_connection_fails_the_watch_then_reconnects_and_resyncs(
    frozen_sim: SimServer, venue: str
) -> None:
    async with ccxt_client(frozen_sim, venue) as ex:
        await ex.load_markets()
        await caught_up(ex, frozen_sim, venue, "BTC/USDT")
        pending = asyncio.ensure_future(ex.watch_order_book("BTC/USDT"))
        while not frozen_sim.protocols[venue].connections:
            await asyncio.sleep(0)
        for connection in list(frozen_sim.protocols[venue].connections):
            connection.close_soon()
        with pytest.raises(ccxt.NetworkError):
            await asyncio.wait_for(pending, timeout=5)
        frozen_sim.step(venue, count=3, symbol="BTC/USDT")
        await caught_up(ex, frozen_sim, venue, "BTC/USDT")
        assert local_levels(ex, "BTC/USDT") == sim_levels(frozen_sim, venue, "BTC/USDT")


@pytest.mark.parametrize("venue", VENUES)
async def test_sequence_gap_is_detected_and_resynchronised(
    frozen_sim: SimServer, venue: str
) -> None:
    async with ccxt_client(frozen_sim, venue) as ex:
        await ex.load_markets()
        await caught_up(ex, frozen_sim, venue, "BTC/USDT")
        frozen_sim.venues[venue].faults.skip_sequence = 1
        frozen_sim.step(venue, symbol="BTC/USDT")  # lost on the way
        frozen_sim.step(venue, symbol="BTC/USDT")  # arrives with a gap before it
        with pytest.raises(ccxt.InvalidNonce):  # ChecksumError on Binance is a subclass
            await caught_up(ex, frozen_sim, venue, "BTC/USDT")
        await caught_up(ex, frozen_sim, venue, "BTC/USDT")  # a new watch resubscribes
        assert local_levels(ex, "BTC/USDT") == sim_levels(frozen_sim, venue, "BTC/USDT")


@pytest.mark.parametrize("venue", VENUES)
async def test_delayed_and_stalled_websockets(frozen_sim: SimServer, venue: str) -> None:
    sim_venue = frozen_sim.venues[venue]
    loop = asyncio.get_running_loop()
    async with ccxt_client(frozen_sim, venue) as ex:
        await ex.load_markets()
        await caught_up(ex, frozen_sim, venue, "BTC/USDT")

        sim_venue.faults.ws_delay_ms = 300
        started = loop.time()
        frozen_sim.step(venue, symbol="BTC/USDT")
        await caught_up(ex, frozen_sim, venue, "BTC/USDT")
        assert loop.time() - started >= 0.3
        sim_venue.faults.ws_delay_ms = 0

        sim_venue.faults.ws_stall = True
        sim_venue.notify_faults()
        frozen_sim.step(venue, symbol="BTC/USDT")
        with pytest.raises(TimeoutError):  # nothing arrives while the feed is stalled
            await asyncio.wait_for(asyncio.shield(ex.watch_order_book("BTC/USDT")), timeout=0.5)
        sim_venue.faults.ws_stall = False
        sim_venue.notify_faults()
        await caught_up(ex, frozen_sim, venue, "BTC/USDT")
        assert local_levels(ex, "BTC/USDT") == sim_levels(frozen_sim, venue, "BTC/USDT")


REST_ERRORS = {
    ("binance", 429): ccxt.DDoSProtection,
    ("binance", 418): ccxt.DDoSProtection,
    ("binance", 500): ccxt.ExchangeNotAvailable,
    ("binance", 503): ccxt.ExchangeNotAvailable,
    ("okx", 429): ccxt.RateLimitExceeded,
    ("okx", 418): ccxt.DDoSProtection,
    ("okx", 500): ccxt.ExchangeNotAvailable,
    ("okx", 503): ccxt.OnMaintenance,
}


@pytest.mark.parametrize(("venue", "status"), list(REST_ERRORS))
async def test_rest_error_answers_raise_what_the_real_exchange_would(
    frozen_sim: SimServer, venue: str, status: int
) -> None:
    async with ccxt_client(frozen_sim, venue, websocket=False) as ex:
        await ex.load_markets()
        frozen_sim.venues[venue].faults.rest_errors = [status]
        with pytest.raises(REST_ERRORS[(venue, status)]):
            await ex.fetch_order_book("BTC/USDT")
        book = await ex.fetch_order_book("BTC/USDT")  # the fault was one answer only
        assert book["bids"]


@pytest.mark.parametrize("venue", VENUES)
async def test_stalled_rest_times_out(frozen_sim: SimServer, venue: str) -> None:
    async with ccxt_client(frozen_sim, venue, websocket=False, timeout=300) as ex:
        await ex.load_markets()
        frozen_sim.venues[venue].faults.rest_stall_s = 1.0
        with pytest.raises(ccxt.RequestTimeout):
            await ex.fetch_order_book("BTC/USDT")


@pytest.mark.parametrize("venue", VENUES)
async def test_clock_skew_expires_signatures_until_the_client_syncs_time(
    frozen_sim: SimServer, venue: str
) -> None:
    frozen_sim.venues[venue].faults.clock_skew_ms = -120_000
    async with ccxt_client(frozen_sim, venue, websocket=False) as ex:
        await ex.load_markets()
        with pytest.raises(ccxt.InvalidNonce):
            await ex.fetch_balance()
    async with ccxt_client(
        frozen_sim, venue, websocket=False, options={"adjustForTimeDifference": True}
    ) as ex:
        await ex.load_markets()
        balance = await ex.fetch_balance()
        assert balance["USDT"]["total"] > 0


@pytest.mark.parametrize("venue", VENUES)
async def test_rejected_and_partially_filled_orders(frozen_sim: SimServer, venue: str) -> None:
    faults = frozen_sim.venues[venue].faults
    async with ccxt_client(frozen_sim, venue, websocket=False) as ex:
        await ex.load_markets()
        book = await ex.fetch_order_book("BTC/USDT", 5)
        ask, size = book["asks"][0][:2]
        faults.reject_orders = 1
        with pytest.raises(ccxt.InvalidOrder):
            await ex.create_order("BTC/USDT", "limit", "buy", 0.002, ask, {"timeInForce": "IOC"})

        faults.partial_fill_orders = 1
        faults.partial_fill_ratio = 0.5
        amount = min(0.002, size)
        order = await ex.create_order(
            "BTC/USDT", "limit", "buy", amount, ask, {"timeInForce": "IOC"}
        )
        fetched = await ex.fetch_order(order["id"], "BTC/USDT")
        assert fetched["filled"] == pytest.approx(amount / 2)
        assert fetched["status"] == ("expired" if venue == "binance" else "canceled")

        normal = await ex.create_order(
            "BTC/USDT", "limit", "buy", amount, ask, {"timeInForce": "IOC"}
        )
        assert (await ex.fetch_order(normal["id"], "BTC/USDT"))["filled"] == amount
    assert [o.reason for o in frozen_sim.venues[venue].rejections] == ["rejected_by_fault"]


async def test_okx_private_stream_pushes_fills(frozen_sim: SimServer) -> None:
    async with ccxt_client(frozen_sim, "okx") as ex:
        await ex.load_markets()
        book = await ex.fetch_order_book("ETH/USDT", 5)
        watcher = asyncio.ensure_future(ex.watch_my_trades("ETH/USDT"))
        while not frozen_sim.protocols["okx"]._order_subscribers:  # type: ignore[attr-defined]
            await asyncio.sleep(0)
        order = await ex.create_order(
            "ETH/USDT",
            "limit",
            "buy",
            0.01,
            book["asks"][0][0],
            {"timeInForce": "IOC", "clientOrderId": "ws1"},
        )
        trades = await asyncio.wait_for(watcher, timeout=5)
        assert trades[-1]["order"] == order["id"]
        assert trades[-1]["amount"] == 0.01
