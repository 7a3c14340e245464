"""The shared fill model: properties over random books and orders (hypothesis), plus the
status, fee and rounding rules by hand."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from decimal import Decimal, localcontext

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arbot.model import (
    ZERO,
    Market,
    Order,
    OrderBook,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    to_decimal,
)
from arbot.venues.fills import (
    EXACT,
    Execution,
    FeeAsset,
    fee_currency,
    fill_order,
    match_levels,
    order_problem,
)

TICK = Decimal("0.01")


def market(lot: str = "0.001", fee: str = "0.001", min_notional: str = "0") -> Market:
    return Market(
        "paper",
        "BTC/USDT",
        "BTC",
        "USDT",
        TICK,
        Decimal(lot),
        min_amount=Decimal(lot),
        min_notional=Decimal(min_notional),
        taker_fee=Decimal(fee),
    )


def order(
    side: Side,
    amount: str | Decimal,
    price: str | Decimal | None,
    tif: TimeInForce = TimeInForce.IOC,
    kind: OrderType = OrderType.LIMIT,
) -> Order:
    return Order(
        "c1",
        "paper",
        "BTC/USDT",
        side,
        kind,
        Decimal(amount),
        None if price is None else Decimal(price),
        tif,
    )


def book(
    asks: list[tuple[float, float]], bids: list[tuple[float, float]] | None = None
) -> OrderBook:
    return OrderBook("paper", "BTC/USDT", bids or [], asks)


def run(o: Order, b: OrderBook, m: Market, fee_asset: FeeAsset = FeeAsset.RECEIVED) -> Execution:
    ids = (f"t{n}" for n in itertools.count(1))
    return fill_order(o, b, m, trade_ids=ids, timestamp_ms=1234, fee_asset=fee_asset)


# ----- generated cases ---------------------------------------------------------------


@dataclass
class Case:
    market: Market
    book: OrderBook
    order: Order
    on_grid: bool


@st.composite
def cases(draw: st.DrawFn) -> Case:
    lot = draw(st.sampled_from(["0.00001", "0.001", "0.1", "1"]))
    fee = draw(st.sampled_from(["0", "0.00075", "0.001", "0.002"]))
    m = market(lot, fee)
    side = draw(st.sampled_from(list(Side)))
    ticks = draw(st.lists(st.integers(1, 5000), min_size=0, max_size=12, unique=True))
    ticks.sort(reverse=side is Side.SELL)
    on_grid = draw(st.booleans())
    levels: list[tuple[float, float]] = []
    for tick in ticks:
        price = float(tick * TICK)
        if on_grid:
            size = float(draw(st.integers(1, 500)) * m.amount_step)
        else:
            size = draw(st.floats(1e-6, 50, allow_nan=False, allow_infinity=False))
        levels.append((price, size))
    b = book(levels) if side is Side.BUY else book([], levels)
    kind = draw(st.sampled_from(list(OrderType)))
    tif = draw(st.sampled_from(list(TimeInForce)))
    amount = draw(st.integers(1, 3000)) * m.amount_step
    limit = draw(st.integers(1, 5000)) * TICK if kind is OrderType.LIMIT else None
    return Case(m, b, order(side, amount, limit, tif, kind), on_grid)


def within_limit(c: Case) -> list[tuple[Decimal, Decimal]]:
    """The book levels (as Decimal) the order may take, by its limit."""
    out = []
    for p, q in c.book.levels_for(c.order.side):
        price = to_decimal(p)
        limit = c.order.price
        if limit is not None and (price > limit if c.order.side is Side.BUY else price < limit):
            break
        out.append((price, to_decimal(q)))
    return out


def takes_everything_it_can(c: Case) -> bool:
    return not (c.order.type is OrderType.LIMIT and c.order.time_in_force is TimeInForce.FOK)


@settings(max_examples=300, deadline=None)
@given(cases())
def test_fills_respect_amount_limit_and_grid(c: Case) -> None:
    ex = run(c.order, c.book, c.market)
    assert ex.filled == sum((f.amount for f in ex.fills), ZERO) == ex.order.filled
    assert ZERO <= ex.filled <= c.order.amount
    for fill in ex.fills:
        assert fill.amount > 0
        assert fill.amount % c.market.amount_step == 0
        if c.order.price is not None:
            if c.order.side is Side.BUY:
                assert fill.price <= c.order.price
            else:
                assert fill.price >= c.order.price
    prices = [f.price for f in ex.fills]
    assert prices == sorted(prices, reverse=c.order.side is Side.SELL)


@settings(max_examples=300, deadline=None)
@given(cases())
def test_filled_is_the_depth_within_the_limit_rounded_to_the_lot(c: Case) -> None:
    ex = run(c.order, c.book, c.market)
    depth = sum((q for _, q in within_limit(c)), ZERO)
    can = c.market.round_amount(min(c.order.amount, depth))
    if takes_everything_it_can(c):
        assert ex.filled == can
    else:  # FOK: all or nothing
        assert ex.filled == (c.order.amount if can == c.order.amount else ZERO)
    if ex.filled == c.order.amount:
        assert ex.order.status is OrderStatus.FILLED
    elif c.order.type is OrderType.LIMIT and c.order.time_in_force is TimeInForce.GTC:
        assert ex.order.status is OrderStatus.OPEN
    else:
        assert ex.order.status is OrderStatus.EXPIRED


@settings(max_examples=300, deadline=None)
@given(cases())
def test_vwap_equals_the_book_walk(c: Case) -> None:
    ex = run(c.order, c.book, c.market)
    if not ex.filled:
        assert ex.order.average_price is None
        assert ex.cost == 0
        return
    with localcontext(EXACT):
        assert ex.cost == sum((f.price * f.amount for f in ex.fills), ZERO)
        assert ex.order.average_price == ex.cost / ex.filled
    walk = c.book.walk(c.order.side, float(ex.filled))
    if c.on_grid:
        # Levels on the lot grid: one fill per level touched, at its price, exactly.
        expected = []
        remaining = ex.filled
        for price, size in within_limit(c):
            take = min(size, remaining)
            expected.append((price, take))
            remaining -= take
            if not remaining:
                break
        assert [(f.price, f.amount) for f in ex.fills] == expected
        assert float(ex.cost) == pytest.approx(walk.cost, rel=1e-12)
    # Off the grid, a fraction of a lot left on a level is taken at the next, worse, price.
    elif c.order.side is Side.BUY:
        assert float(ex.cost) >= walk.cost * (1 - 1e-12)
    else:
        assert float(ex.cost) <= walk.cost * (1 + 1e-12)


@settings(max_examples=300, deadline=None)
@given(cases(), st.sampled_from(list(FeeAsset)))
def test_fees_and_balance_conservation(c: Case, fee_asset: FeeAsset) -> None:
    ex = run(c.order, c.book, c.market, fee_asset)
    rate = c.market.taker_fee
    currency = fee_currency(c.market, c.order.side, fee_asset)
    expected_currency = (
        "BTC" if c.order.side is Side.BUY and fee_asset is FeeAsset.RECEIVED else "USDT"
    )
    assert currency == ex.fee_currency == expected_currency
    with localcontext(EXACT):
        for fill in ex.fills:
            received = fill.amount if currency == "BTC" else fill.amount * fill.price
            assert fill.fee == rate * received
            assert fill.fee_currency == currency
        assert ex.fee == sum((f.fee for f in ex.fills), ZERO)
        cost = sum((f.amount * f.price for f in ex.fills), ZERO)
        base_fee = ex.fee if currency == "BTC" else ZERO
        quote_fee = ex.fee if currency == "USDT" else ZERO
        if c.order.side is Side.BUY:  # quote out = cost (+ fee), base in = filled (- fee)
            expected = {"BTC": ex.filled - base_fee, "USDT": -cost - quote_fee}
        else:  # base out = filled, quote in = cost - fee
            expected = {"BTC": -ex.filled, "USDT": cost - quote_fee}
        assert ex.balance_changes == expected


@settings(max_examples=100, deadline=None)
@given(cases())
def test_the_same_inputs_give_identical_results(c: Case) -> None:
    first = run(c.order, c.book, c.market)
    with localcontext() as other:  # the caller's decimal context does not matter
        other.prec = 5
        second = run(c.order, c.book, c.market)
    assert first == second
    assert repr(first) == repr(second)
    assert [f.trade_id for f in first.fills] == [f"t{n}" for n in range(1, len(first.fills) + 1)]


# ----- by hand ------------------------------------------------------------------------

ASKS = [(100.0, 0.5), (100.5, 0.3), (101.0, 1.0)]
BIDS = [(99.5, 0.4), (99.0, 0.6)]


def test_ioc_takes_what_crosses_and_expires_the_rest() -> None:
    ex = run(order(Side.BUY, "1", "100.5"), book(ASKS, BIDS), market())
    assert [(f.price, f.amount) for f in ex.fills] == [
        (Decimal("100"), Decimal("0.5")),
        (Decimal("100.5"), Decimal("0.3")),
    ]
    assert ex.order.status is OrderStatus.EXPIRED
    assert ex.order.filled == Decimal("0.8")
    assert ex.order.average_price == Decimal("80.15") / Decimal("0.8")
    assert ex.fee == Decimal("0.0008")
    assert ex.fee_currency == "BTC"
    assert ex.balance_changes == {"BTC": Decimal("0.7992"), "USDT": Decimal("-80.15")}
    assert ex.order.updated_ms == 1234
    assert [f.timestamp_ms for f in ex.fills] == [1234, 1234]


def test_a_sell_pays_its_fee_in_quote() -> None:
    ex = run(order(Side.SELL, "0.5", "99"), book(ASKS, BIDS), market())
    assert [(f.price, f.amount) for f in ex.fills] == [
        (Decimal("99.5"), Decimal("0.4")),
        (Decimal("99"), Decimal("0.1")),
    ]
    assert ex.order.status is OrderStatus.FILLED
    assert ex.fee == Decimal("0.0497")
    assert ex.fee_currency == "USDT"
    assert ex.balance_changes == {"BTC": Decimal("-0.5"), "USDT": Decimal("49.6503")}


def test_fok_fills_completely_or_not_at_all() -> None:
    too_big = run(order(Side.BUY, "0.9", "100.5", TimeInForce.FOK), book(ASKS), market())
    assert too_big.fills == ()
    assert too_big.order.status is OrderStatus.EXPIRED
    assert too_big.order.filled == 0
    assert too_big.order.average_price is None
    assert too_big.balance_changes == {"BTC": ZERO, "USDT": ZERO}
    fits = run(order(Side.BUY, "0.8", "100.5", TimeInForce.FOK), book(ASKS), market())
    assert fits.order.status is OrderStatus.FILLED
    assert fits.filled == Decimal("0.8")


def test_a_gtc_remainder_stays_open() -> None:
    ex = run(order(Side.BUY, "1", "100", TimeInForce.GTC), book(ASKS), market())
    assert ex.order.status is OrderStatus.OPEN
    assert ex.order.filled == Decimal("0.5")
    assert ex.order.remaining == Decimal("0.5")
    nothing = run(order(Side.BUY, "1", "99", TimeInForce.GTC), book(ASKS), market())
    assert nothing.order.status is OrderStatus.OPEN
    assert nothing.fills == ()


def test_a_market_order_walks_until_filled_or_the_book_ends() -> None:
    m = market()
    filled = run(order(Side.BUY, "1", None, kind=OrderType.MARKET), book(ASKS), m)
    assert filled.order.status is OrderStatus.FILLED
    assert [f.price for f in filled.fills] == [Decimal("100"), Decimal("100.5"), Decimal("101")]
    short = run(order(Side.BUY, "3", None, TimeInForce.GTC, OrderType.MARKET), book(ASKS), m)
    assert short.order.status is OrderStatus.EXPIRED
    assert short.filled == Decimal("1.8")


def test_a_resting_order_accumulates_fills() -> None:
    m = market()
    first = run(order(Side.BUY, "1", "100", TimeInForce.GTC), book(ASKS), m).order
    later = run(first, book([(99.0, 2.0)]), m)
    assert [(f.price, f.amount) for f in later.fills] == [(Decimal("99"), Decimal("0.5"))]
    assert later.order.status is OrderStatus.FILLED
    assert later.order.filled == 1
    assert later.order.average_price == Decimal("99.5")
    assert match_levels(later.order, book(ASKS), m) == []


def test_off_grid_levels_roll_the_fraction_to_the_next_level() -> None:
    m = market(lot="0.1")
    ex = run(order(Side.BUY, "1", "101"), book([(100.0, 0.15), (100.5, 0.15), (101.0, 0.05)]), m)
    assert [(f.price, f.amount) for f in ex.fills] == [
        (Decimal("100"), Decimal("0.1")),
        (Decimal("100.5"), Decimal("0.2")),
    ]
    assert ex.filled == Decimal("0.3")


def test_float_levels_become_short_decimals() -> None:
    ex = run(order(Side.BUY, "0.3", "0.3"), book([(0.1, 0.1), (0.2, 0.2)]), market(lot="0.1"))
    assert [(f.price, f.amount) for f in ex.fills] == [
        (Decimal("0.1"), Decimal("0.1")),
        (Decimal("0.2"), Decimal("0.2")),
    ]
    assert ex.cost == Decimal("0.05")


def test_quote_fee_rule_charges_a_buy_in_quote() -> None:
    ex = run(order(Side.BUY, "0.5", "100"), book(ASKS), market(), FeeAsset.QUOTE)
    assert ex.fee == Decimal("0.05")
    assert ex.fee_currency == "USDT"
    assert ex.balance_changes == {"BTC": Decimal("0.5"), "USDT": Decimal("-50.05")}


def test_order_problem_is_what_a_venue_refuses() -> None:
    m = market(min_notional="5")
    b = book(ASKS, BIDS)
    assert order_problem(order(Side.BUY, "0.1", "100"), b, m) is None
    assert order_problem(order(Side.BUY, "0.1", None), b, m) == "a limit order needs a price"
    assert "lot step" in str(order_problem(order(Side.BUY, "0.0001", "100"), b, m))
    assert "tick" in str(order_problem(order(Side.BUY, "0.1", "100.001"), b, m))
    assert "notional" in str(order_problem(order(Side.BUY, "0.01", "100"), b, m))
    market_buy = order(Side.BUY, "0.1", None, kind=OrderType.MARKET)
    assert order_problem(market_buy, b, m) is None
    assert "notional" in str(
        order_problem(order(Side.SELL, "0.01", None, kind=OrderType.MARKET), b, m)
    )
    assert "no liquidity" in str(order_problem(market_buy, book([], BIDS), m))
    assert "no liquidity" in str(order_problem(market_buy, None, m))
    other = Order("c", "paper", "ETH/USDT", Side.BUY, OrderType.LIMIT, Decimal(1), Decimal(1))
    assert "symbol" in str(order_problem(other, b, m))
