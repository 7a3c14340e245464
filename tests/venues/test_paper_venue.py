"""``PaperVenue``: a simulated account over given or live books; nothing reaches an
exchange (the simulator sees no order while the paper venue fills)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from arbot.model import (
    Market,
    Order,
    OrderBook,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    to_decimal,
)
from arbot.sim.server import SimServer
from arbot.strategy.context import MarketState
from arbot.testing import sim_venue_config
from arbot.venues.ccxt_venue import CcxtVenue
from arbot.venues.errors import OrderNotFound, OrderRejected, VenueError
from arbot.venues.fills import FeeAsset
from arbot.venues.paper import PaperVenue

SYMBOL = "BTC/USDT"
MARKET = Market(
    "paper",
    SYMBOL,
    "BTC",
    "USDT",
    Decimal("0.01"),
    Decimal("0.001"),
    min_amount=Decimal("0.001"),
    min_notional=Decimal("5"),
    taker_fee=Decimal("0.001"),
)
ASKS = [(100.0, 0.5), (100.5, 0.3), (101.0, 1.0)]
BIDS = [(99.5, 0.4), (99.0, 0.6)]
NOW_NS = 1_700_000_000_000_000_000
Z = Decimal(0)


def order(
    client_id: str,
    side: Side,
    amount: str,
    price: str | None,
    tif: TimeInForce = TimeInForce.IOC,
    kind: OrderType = OrderType.LIMIT,
) -> Order:
    return Order(
        client_id,
        "paper",
        SYMBOL,
        side,
        kind,
        Decimal(amount),
        None if price is None else Decimal(price),
        tif,
    )


def paper(
    usdt: str = "1000", btc: str = "1", fee_asset: FeeAsset = FeeAsset.RECEIVED
) -> tuple[PaperVenue, MarketState]:
    state = MarketState([MARKET], clock=lambda: NOW_NS)
    state.books[("paper", SYMBOL)] = OrderBook("paper", SYMBOL, list(BIDS), list(ASKS))
    venue = PaperVenue(
        "paper",
        markets={SYMBOL: MARKET},
        balances={"USDT": Decimal(usdt), "BTC": Decimal(btc)},
        book_source=lambda symbol: state.books.get(("paper", symbol)),
        clock=lambda: NOW_NS,
        fee_asset=fee_asset,
        id_prefix="p-",
    )
    return venue, state


async def balances(venue: PaperVenue) -> dict[str, tuple[Decimal, Decimal]]:
    return {a: (b.free, b.used) for a, b in (await venue.fetch_balances()).items()}


async def test_a_gtc_order_fills_what_crosses_rests_and_cancels() -> None:
    venue, _ = paper()
    placed = await venue.create_order(order("c1", Side.BUY, "2", "100.5", TimeInForce.GTC))
    assert placed.status is OrderStatus.OPEN
    assert placed.filled == Decimal("0.8")
    assert placed.exchange_order_id == "p-1"
    assert placed.created_ms == placed.updated_ms == NOW_NS // 1_000_000
    assert placed.average_price == Decimal("80.15") / Decimal("0.8")
    fills = await venue.fetch_order_fills(placed)
    assert [(f.price, f.amount, f.fee, f.fee_currency) for f in fills] == [
        (Decimal("100"), Decimal("0.5"), Decimal("0.0005"), "BTC"),
        (Decimal("100.5"), Decimal("0.3"), Decimal("0.0003"), "BTC"),
    ]
    assert [f.trade_id for f in fills] == ["p-t1", "p-t2"]
    assert {f.client_order_id for f in fills} == {"c1"}
    locked = Decimal("1.2") * Decimal("100.5")
    assert await balances(venue) == {
        "USDT": (Decimal(1000) - Decimal("80.15") - locked, locked),
        "BTC": (Decimal("1.7992"), Decimal(0)),
    }
    assert await venue.fetch_open_orders() == [placed]
    assert await venue.fetch_open_orders("ETH/USDT") == []
    assert await venue.fetch_order(order("c1", Side.BUY, "2", None)) == placed

    canceled = await venue.cancel_order(placed)
    assert canceled.status is OrderStatus.CANCELED
    assert canceled.filled == Decimal("0.8")
    assert await venue.fetch_order(placed) == canceled
    assert await venue.fetch_open_orders() == []
    assert await balances(venue) == {
        "USDT": (Decimal("919.85"), Decimal(0)),
        "BTC": (Decimal("1.7992"), Decimal(0)),
    }
    with pytest.raises(OrderNotFound, match="not open"):
        await venue.cancel_order(placed)


async def test_ioc_partial_fill_when_depth_is_short() -> None:
    venue, _ = paper()
    result = await venue.create_order(order("c1", Side.SELL, "0.9", "99.5"))
    assert result.status is OrderStatus.EXPIRED
    assert result.filled == Decimal("0.4")
    assert await venue.fetch_open_orders() == []
    fills = await venue.fetch_order_fills(result)
    assert [(f.price, f.amount, f.fee_currency) for f in fills] == [
        (Decimal("99.5"), Decimal("0.4"), "USDT")
    ]
    assert await balances(venue) == {
        "USDT": (Decimal(1000) + Decimal("39.8") - Decimal("0.0398"), Decimal(0)),
        "BTC": (Decimal("0.6"), Decimal(0)),
    }
    with pytest.raises(OrderNotFound, match="not open"):
        await venue.cancel_order(result)


async def test_liquidity_taken_from_a_book_is_not_taken_again_until_it_updates() -> None:
    venue, state = paper(usdt="10000")
    first = await venue.create_order(order("c1", Side.BUY, "0.6", "100.5"))
    assert first.filled == Decimal("0.6")  # 0.5 at 100, 0.1 at 100.5
    second = await venue.create_order(order("c2", Side.BUY, "0.6", "100.5"))
    assert second.filled == Decimal("0.2")  # only what is left at 100.5
    assert second.average_price == Decimal("100.5")
    third = await venue.create_order(order("c3", Side.BUY, "0.6", "100.5"))
    assert third.filled == Z
    state.books[("paper", SYMBOL)] = OrderBook(
        "paper", SYMBOL, list(BIDS), list(ASKS), received_ns=NOW_NS + 1
    )  # the exchange's next update: its own levels again
    fourth = await venue.create_order(order("c4", Side.BUY, "0.6", "100.5"))
    assert fourth.filled == Decimal("0.6")


async def test_fok_and_market_orders() -> None:
    venue, _ = paper()
    fok = await venue.create_order(order("c1", Side.BUY, "0.9", "100.5", TimeInForce.FOK))
    assert fok.status is OrderStatus.EXPIRED
    assert fok.filled == 0
    assert await venue.fetch_order_fills(fok) == []
    assert await balances(venue) == {"USDT": (Decimal(1000), Z), "BTC": (Decimal(1), Z)}
    market = await venue.create_order(order("c2", Side.BUY, "1", None, kind=OrderType.MARKET))
    assert market.status is OrderStatus.FILLED
    assert market.average_price == Decimal("100.35")
    assert await balances(venue) == {
        "USDT": (Decimal(1000) - Decimal("100.35"), Z),
        "BTC": (Decimal("1.999"), Z),
    }


async def test_insufficient_balance_is_refused_and_changes_nothing() -> None:
    venue, _ = paper(usdt="100", btc="0.5")
    before = await balances(venue)
    # A limit buy must cover amount x limit, even if it would fill cheaper.
    with pytest.raises(OrderRejected, match=r"insufficient balance.*100\.5 USDT, 100 free"):
        await venue.create_order(order("c1", Side.BUY, "1", "100.5"))
    with pytest.raises(OrderRejected, match=r"insufficient balance.*0\.6 BTC, 0\.5 free"):
        await venue.create_order(order("c2", Side.SELL, "0.6", "99"))
    # A market buy must cover the walk: 0.5 @ 100 + 0.3 @ 100.5 + 0.2 @ 101 = 100.35.
    with pytest.raises(OrderRejected, match=r"100\.35 USDT"):
        await venue.create_order(order("c3", Side.BUY, "1", None, kind=OrderType.MARKET))
    assert await balances(venue) == before
    assert await venue.fetch_open_orders() == []
    with pytest.raises(OrderNotFound, match="c1 not found"):
        await venue.fetch_order(order("c1", Side.BUY, "1", "100.5"))
    # Exactly enough is enough.
    ok = await venue.create_order(order("c4", Side.BUY, "1", "100"))
    assert ok.status is OrderStatus.EXPIRED
    assert ok.filled == Decimal("0.5")


async def test_fees_in_quote_are_covered_by_the_balance_check() -> None:
    venue, _ = paper(usdt="100", fee_asset=FeeAsset.QUOTE)
    with pytest.raises(OrderRejected, match=r"needs 100\.10* USDT"):
        await venue.create_order(order("c1", Side.BUY, "1", "100"))
    venue, _ = paper(usdt="50.05", fee_asset=FeeAsset.QUOTE)
    done = await venue.create_order(order("c2", Side.BUY, "0.5", "100"))
    assert done.status is OrderStatus.FILLED
    assert await balances(venue) == {"USDT": (Decimal(0), Z), "BTC": (Decimal("1.5"), Z)}


async def test_a_duplicate_client_order_id_is_refused() -> None:
    venue, _ = paper()
    await venue.create_order(order("same", Side.BUY, "0.1", "100"))
    with pytest.raises(OrderRejected, match="duplicate client order id 'same'"):
        await venue.create_order(order("same", Side.BUY, "0.1", "100"))
    assert len(await venue.fetch_order_fills(order("same", Side.BUY, "0.1", "100"))) == 1


async def test_bad_orders_are_refused() -> None:
    venue, state = paper()
    with pytest.raises(OrderRejected, match="unknown symbol ETH/USDT"):
        await venue.create_order(
            Order("c", "", "ETH/USDT", Side.BUY, OrderType.LIMIT, Decimal(1), Decimal(1))
        )
    with pytest.raises(OrderRejected, match="lot step"):
        await venue.create_order(order("c", Side.BUY, "0.0001", "100"))
    with pytest.raises(OrderRejected, match="notional"):
        await venue.create_order(order("c", Side.BUY, "0.01", "100"))
    with pytest.raises(OrderRejected, match="needs a price"):
        await venue.create_order(order("c", Side.BUY, "0.1", None))
    del state.books[("paper", SYMBOL)]
    with pytest.raises(OrderRejected, match="no current BTC/USDT book"):
        await venue.create_order(order("c", Side.BUY, "0.1", "100"))
    with pytest.raises(VenueError, match="no book"):
        await venue.fetch_order_book(SYMBOL)
    with pytest.raises(VenueError, match="no market data"):
        await venue.watch_order_book(SYMBOL, 10)


async def test_fills_follow_the_engines_current_book() -> None:
    venue, state = paper()
    state.books[("paper", SYMBOL)].asks = [(98.0, 2.0)]
    result = await venue.create_order(order("c1", Side.BUY, "1", "100"))
    assert result.average_price == Decimal(98)
    book = await venue.fetch_order_book(SYMBOL, 1)
    assert book.asks == [(98.0, 2.0)]
    assert book.bids == BIDS[:1]


# ----- live books from the simulator --------------------------------------------------


@pytest.mark.parametrize("name", ["binance", "okx"])
async def test_paper_fills_against_the_simulators_book_without_sending_orders(
    frozen_sim: SimServer, name: str
) -> None:
    config = sim_venue_config(frozen_sim, name, symbols=[SYMBOL]).model_copy(
        # Without a key ccxt only knows its default fees (OKX's differ from the
        # simulator's): the account's real fee comes from the config override.
        update={"balances": {"USDT": Decimal(1_000_000)}, "taker_fee": Decimal("0.001")}
    )
    venue = PaperVenue.from_config(name, config)
    try:
        reader = venue.market_data
        assert isinstance(reader, CcxtVenue)
        assert reader.guard is None
        assert not reader.exchange.apiKey  # the keystore's key is not even handed over
        markets = await venue.load_markets()
        market = markets[SYMBOL]
        assert market.venue == name
        assert market.taker_fee == frozen_sim.venues[name].taker_fee
        frozen_sim.step(name, symbol=SYMBOL)
        book = await venue.fetch_order_book(SYMBOL, 5)
        assert book.venue == name
        asks = book.asks[:2]
        amount = to_decimal(asks[0][1]) + to_decimal(asks[1][1])
        limit = to_decimal(asks[1][0])
        sim_before = frozen_sim.venues[name].snapshot(SYMBOL, 5)

        result = await venue.create_order(
            Order("paper-1", name, SYMBOL, Side.BUY, OrderType.LIMIT, amount * 2, limit)
        )
        assert result.status is OrderStatus.EXPIRED
        assert result.filled == amount
        fills = await venue.fetch_order_fills(result)
        assert [(f.price, f.amount) for f in fills] == [
            (to_decimal(p), to_decimal(q)) for p, q in asks
        ]
        assert sum(f.fee for f in fills) == amount * market.taker_fee
        assert frozen_sim.venues[name].orders == {}
        assert frozen_sim.venues[name].trades == []
        assert frozen_sim.venues[name].snapshot(SYMBOL, 5) == sim_before

        # The streamed book feeds fills too.
        watch = asyncio.ensure_future(venue.watch_order_book(SYMBOL, 5))
        while not watch.done():
            frozen_sim.step(name, symbol=SYMBOL)
            await asyncio.wait([watch], timeout=0.05)
        streamed = watch.result()
        assert streamed.venue == name
        sold = await venue.create_order(
            Order("paper-2", name, SYMBOL, Side.SELL, OrderType.MARKET, Decimal("0.001"), None)
        )
        assert sold.status is OrderStatus.FILLED
        fills = await venue.fetch_order_fills(sold)
        assert [f.price for f in fills] == [to_decimal(p) for p, _ in streamed.bids[: len(fills)]]
        assert frozen_sim.venues[name].orders == {}
        assert frozen_sim.venues[name].trades == []
    finally:
        await venue.close()
