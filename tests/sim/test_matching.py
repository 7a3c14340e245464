"""The simulator's matching engine and accounts: properties that must hold after any
sequence of orders, cancels and maker moves (hypothesis), plus priority by hand."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arbot.sim.book import BUY, EXPIRED, FILLED, SELL
from arbot.sim.venue import SimMarket, SimReject, SimVenue

D = Decimal
MARKET = SimMarket("BTC/USDT", "BTC", "USDT", D("0.5"), D("0.001"), D("0.001"), D("1000"), D("1"))
START = {"USDT": D(200_000), "BTC": D(3)}


def fresh_venue() -> SimVenue:
    venue = SimVenue("v", "binance", [MARKET], maker_fee=D("0.0002"), taker_fee=D("0.001"))
    venue.add_account("main", dict(START))
    venue.set_maker_ladder(
        MARKET.symbol,
        {200_000 - 2 * i: 500 + 37 * i for i in range(10)},  # bids from 100000.0 down
        {200_002 + 2 * i: 400 + 53 * i for i in range(10)},  # asks from 100001.0 up
    )
    return venue


order_ops = st.tuples(
    st.just("order"),
    st.sampled_from([BUY, SELL]),
    st.sampled_from(["limit", "market"]),
    st.sampled_from(["GTC", "IOC", "FOK"]),
    st.integers(1, 3000),  # lots
    st.integers(199_970, 200_030),  # ticks
)
cancel_ops = st.tuples(st.just("cancel"), st.integers(0, 50))
maker_ops = st.tuples(st.just("makers"), st.integers(-40, 40), st.integers(1, 900))
operations = st.lists(st.one_of(order_ops, cancel_ops, maker_ops), min_size=1, max_size=40)


def check_invariants(venue: SimVenue) -> None:
    account = venue.accounts["main"]
    open_orders = venue.open_orders("main", None)
    for asset in ("USDT", "BTC"):
        assert account.free.get(asset, D(0)) >= 0, asset
        assert account.locked.get(asset, D(0)) >= 0, asset
    locked_quote = sum((o.locked for o in open_orders if o.side == BUY), D(0))
    locked_base = sum((o.locked for o in open_orders if o.side == SELL), D(0))
    assert account.locked.get("USDT", D(0)) == locked_quote
    assert account.locked.get("BTC", D(0)) == locked_base

    expected = dict(START)
    for trade in venue.trades:
        if trade.side == BUY:
            expected["BTC"] += trade.amount - trade.fee
            expected["USDT"] -= trade.quote_amount
        else:
            expected["BTC"] -= trade.amount
            expected["USDT"] += trade.quote_amount - trade.fee
    for asset, amount in expected.items():
        assert account.free.get(asset, D(0)) + account.locked.get(asset, D(0)) == amount, asset

    book = venue.books[MARKET.symbol]
    for side in (book.bids, book.asks):
        assert side.prices == sorted(side.levels)
        for price, level in side.levels.items():
            assert level.orders, price
            assert level.total == sum(o.remaining for o in level.orders)
    if book.bids.prices and book.asks.prices:
        assert book.bids.best() < book.asks.best()  # type: ignore[operator]


@settings(max_examples=150, deadline=None)
@given(operations)
def test_any_sequence_keeps_balances_locks_and_book_consistent(
    ops: list[tuple[object, ...]],
) -> None:
    venue = fresh_venue()
    placed = []
    for op in ops:
        if op[0] == "order":
            _, side, kind, tif, lots, ticks = op
            amount = MARKET.amount(int(lots))  # type: ignore[arg-type]
            price = MARKET.price(int(ticks)) if kind == "limit" else None  # type: ignore[arg-type]
            try:
                order = venue.place_order(
                    "main", MARKET.symbol, str(side), str(kind), amount, price, str(tif)
                )
            except SimReject:
                continue
            placed.append(order)
            trades = [t for t in venue.trades if t.order_id == order.order_id]
            if order.time_in_force == "FOK":
                assert order.filled in (0, order.amount)
            if order.time_in_force != "GTC":
                assert not order.is_open
                assert order.status in (FILLED, EXPIRED)
            for trade in trades:
                if price is not None and trade.side == BUY:
                    assert trade.price <= price
                if price is not None and trade.side == SELL:
                    assert trade.price >= price
            assert sum(t.amount for t in trades) == MARKET.amount(order.filled)
            assert not any(t.is_maker for t in trades)
        elif op[0] == "cancel":
            open_orders = venue.open_orders("main", None)
            if open_orders:
                target = open_orders[int(op[1]) % len(open_orders)]  # type: ignore[call-overload]
                venue.cancel_order("main", MARKET.symbol, target)
                assert target.locked == 0
        else:
            _, shift, size = op
            mid = 200_001 + int(shift)  # type: ignore[call-overload]
            venue.set_maker_ladder(
                MARKET.symbol,
                {mid - 1 - 2 * i: int(size) for i in range(8)},  # type: ignore[call-overload]
                {mid + 1 + 2 * i: int(size) for i in range(8)},  # type: ignore[call-overload]
            )
        check_invariants(venue)


def test_same_price_orders_fill_in_time_order() -> None:
    venue = fresh_venue()
    first = venue.place_order(
        "main", MARKET.symbol, SELL, "limit", D("0.1"), D("99999.5") + 10, "GTC", "first"
    )
    second = venue.place_order(
        "main", MARKET.symbol, SELL, "limit", D("0.1"), D("99999.5") + 10, "GTC", "second"
    )
    assert first.is_open
    assert second.is_open
    # Move the makers' bids up through both orders, one lot of 0.15 BTC at a time.
    venue.set_maker_ladder(MARKET.symbol, {200_020: 150}, {200_030: 100})
    assert first.status == FILLED
    assert second.filled == 50  # half of the second order: the first was ahead of it


def test_fok_that_cannot_fill_completely_does_nothing() -> None:
    venue = fresh_venue()
    depth = venue.books[MARKET.symbol].available(BUY, 200_004)  # three ask levels
    before = dict(venue.accounts["main"].free)
    order = venue.place_order(
        "main", MARKET.symbol, BUY, "limit", MARKET.amount(depth + 1), MARKET.price(200_004), "FOK"
    )
    assert order.status == EXPIRED
    assert order.filled == 0
    assert venue.accounts["main"].free == before
    assert venue.trades == []


def test_market_buy_by_quote_spends_at_most_the_budget() -> None:
    venue = fresh_venue()
    order = venue.place_order(
        "main", MARKET.symbol, BUY, "market", None, None, "IOC", "", quote_amount=D("12345")
    )
    assert order.status == FILLED
    assert D(0) < order.quote_filled <= D("12345")
    assert D("12345") - order.quote_filled < MARKET.price(200_020) * MARKET.lot
    assert venue.accounts["main"].locked["USDT"] == 0


@pytest.mark.parametrize(
    ("amount", "price", "kind"),
    [
        (D("0.0015"), D("100000"), "bad_amount"),
        (D("0.001"), D("100000.2"), "bad_price"),
        (D("0.001"), D("900"), "min_notional"),
        (D("2000"), D("1"), "max_amount"),
        (D("50"), D("100000"), "insufficient_balance"),
    ],
)
def test_invalid_orders_are_refused_and_recorded(
    amount: Decimal, price: Decimal, kind: str
) -> None:
    venue = fresh_venue()
    with pytest.raises(SimReject) as info:
        venue.place_order("main", MARKET.symbol, BUY, "limit", amount, price, "GTC", "x1")
    assert info.value.kind == kind
    assert venue.rejections[-1].reason == kind
    assert venue.rejections[-1].client_order_id == "x1"
    assert venue.orders == {}
