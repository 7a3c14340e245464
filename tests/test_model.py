"""Book maths and market rounding: the properties every strategy and risk check relies on."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from arbot.model import Market, OrderBook, OrderStatus, Side, to_decimal

prices = st.floats(min_value=0.01, max_value=1e6, allow_nan=False, allow_infinity=False)
amounts = st.floats(min_value=1e-6, max_value=1e4, allow_nan=False, allow_infinity=False)


@st.composite
def books(draw: st.DrawFn) -> OrderBook:
    mid = draw(st.floats(min_value=1.0, max_value=1e5))
    n_bids = draw(st.integers(0, 15))
    n_asks = draw(st.integers(0, 15))
    bid_gaps = draw(st.lists(st.floats(0.001, 0.01), min_size=n_bids, max_size=n_bids))
    ask_gaps = draw(st.lists(st.floats(0.001, 0.01), min_size=n_asks, max_size=n_asks))
    bids, price = [], mid
    for gap in bid_gaps:
        price = price * (1 - gap)
        bids.append((price, draw(amounts)))
    asks, price = [], mid
    for gap in ask_gaps:
        price = price * (1 + gap)
        asks.append((price, draw(amounts)))
    return OrderBook.checked("v", "BTC/USDT", bids, asks)


@given(books(), st.sampled_from(list(Side)), amounts)
def test_walk_never_fills_more_than_asked_or_than_the_book_holds(
    book: OrderBook, side: Side, amount: float
) -> None:
    walk = book.walk(side, amount)
    available = sum(size for _, size in book.levels_for(side))
    assert walk.filled <= amount
    assert walk.filled == pytest.approx(min(amount, available), rel=1e-9, abs=1e-12)


@given(books(), st.sampled_from(list(Side)), amounts)
def test_average_price_lies_between_best_and_worst_level(
    book: OrderBook, side: Side, amount: float
) -> None:
    walk = book.walk(side, amount)
    levels = book.levels_for(side)
    if not levels:
        assert walk.filled == 0.0
        return
    best = levels[0][0]
    low, high = sorted((best, walk.worst_price))
    assert low * (1 - 1e-12) <= walk.average_price <= high * (1 + 1e-12)


@given(books(), st.sampled_from(list(Side)), amounts, amounts)
def test_taking_more_never_gets_a_better_average(
    book: OrderBook, side: Side, a: float, b: float
) -> None:
    small, large = sorted((a, b))
    first, second = book.walk(side, small), book.walk(side, large)
    if first.filled == 0.0:
        return
    if side is Side.BUY:
        assert second.average_price >= first.average_price * (1 - 1e-12)
    else:
        assert second.average_price <= first.average_price * (1 + 1e-12)


@given(books(), st.sampled_from(list(Side)), amounts)
def test_depth_at_the_worst_price_covers_the_walk(
    book: OrderBook, side: Side, amount: float
) -> None:
    walk = book.walk(side, amount)
    if walk.filled:
        assert book.depth(side, walk.worst_price) >= walk.filled * (1 - 1e-12)


def test_vwap_walks_levels_by_hand() -> None:
    book = OrderBook.checked(
        "v", "BTC/USDT", bids=[(99.0, 1.0), (98.0, 2.0)], asks=[(101.0, 1.0), (102.0, 3.0)]
    )
    assert book.best_bid == 99.0
    assert book.best_ask == 101.0
    assert book.mid == 100.0
    assert book.spread_bps == pytest.approx(200.0)
    assert book.vwap(Side.BUY, 2.0) == pytest.approx((101.0 + 102.0) / 2)
    assert book.vwap(Side.SELL, 3.0) == pytest.approx((99.0 + 2 * 98.0) / 3)
    assert book.vwap(Side.BUY, 5.0) is None  # only 4 on offer
    assert book.depth(Side.BUY, 101.5) == 1.0


@pytest.mark.parametrize(
    ("bids", "asks", "problem"),
    [
        ([(100.0, 1.0)], [(100.0, 1.0)], "crossed"),
        ([(99.0, 1.0), (99.5, 1.0)], [(101.0, 1.0)], "bids are not strictly descending"),
        ([(99.0, 1.0)], [(102.0, 1.0), (101.0, 1.0)], "asks are not strictly ascending"),
        ([(99.0, 0.0)], [(101.0, 1.0)], "positive"),
    ],
)
def test_malformed_books_are_refused(
    bids: list[tuple[float, float]], asks: list[tuple[float, float]], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        OrderBook.checked("v", "BTC/USDT", bids, asks)


def _market(tick: str, step: str) -> Market:
    return Market(
        venue="v",
        symbol="BTC/USDT",
        base="BTC",
        quote="USDT",
        price_tick=Decimal(tick),
        amount_step=Decimal(step),
        min_amount=Decimal(step),
        min_notional=Decimal("5"),
    )


ticks = st.sampled_from(["0.01", "0.1", "0.5", "1", "0.0001", "0.00000001"])
decimals = st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal("1000000"), places=10)


@given(ticks, ticks, decimals)
def test_amounts_round_down_to_the_lot_step(tick: str, step: str, amount: Decimal) -> None:
    market = _market(tick, step)
    rounded = market.round_amount(amount)
    assert rounded % market.amount_step == 0
    assert rounded <= amount
    assert amount - rounded < market.amount_step


@given(ticks, decimals, st.sampled_from(list(Side)))
def test_limit_prices_never_loosen_when_snapped(tick: str, price: Decimal, side: Side) -> None:
    market = _market(tick, "0.001")
    snapped = market.round_limit_price(price, side)
    assert snapped % market.price_tick == 0
    assert abs(snapped - price) < market.price_tick
    if side is Side.BUY:
        assert snapped <= price  # never pay more than the bound
    else:
        assert snapped >= price  # never sell for less than the bound


def test_order_problem_names_the_broken_rule() -> None:
    market = _market("0.01", "0.001")
    assert market.order_problem(Decimal("0.001"), Decimal("10000.00")) is None
    assert "lot step" in (market.order_problem(Decimal("0.0015"), Decimal("100")) or "")
    assert "tick" in (market.order_problem(Decimal("1"), Decimal("100.005")) or "")
    assert "notional" in (market.order_problem(Decimal("0.001"), Decimal("100")) or "")
    assert market.order_problem(Decimal("0"), Decimal("100")) == "amount must be positive"
    bigger_minimum = Market(
        venue="v",
        symbol="BTC/USDT",
        base="BTC",
        quote="USDT",
        price_tick=Decimal("0.01"),
        amount_step=Decimal("0.001"),
        min_amount=Decimal("0.01"),
        max_amount=Decimal("5"),
    )
    assert "below the minimum 0.01" in (
        bigger_minimum.order_problem(Decimal("0.005"), Decimal("1")) or ""
    )
    assert "above the maximum 5" in (bigger_minimum.order_problem(Decimal("6"), Decimal("1")) or "")


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_to_decimal_round_trips_the_float_without_binary_noise(value: float) -> None:
    converted = to_decimal(value)
    assert float(converted) == value
    assert len(converted.as_tuple().digits) <= 17


def test_final_statuses() -> None:
    assert OrderStatus.FILLED.is_final
    assert not OrderStatus.PENDING.is_final
    assert not OrderStatus.UNKNOWN.is_final
