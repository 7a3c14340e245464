"""The fill model shared by :class:`~arbot.venues.paper.PaperVenue` and the backtest.

Pure and deterministic: an :class:`~arbot.model.Order`, the book it meets and its
:class:`~arbot.model.Market` in, the executions out. No clock, no randomness, no I/O;
trade ids and the timestamp come from the caller, so the same inputs always give
equal results.

Rules
-----
* **Taker only.** The order takes the side of ``book`` it trades against (asks for a
  buy, bids for a sell), best level first, at each level's price; the book itself is
  not changed (our size is assumed not to move it, and nothing queues ahead of us at a
  price we can reach). A limit never trades beyond its price; a market order walks
  until it is filled or the book ends.
* **Exact numbers.** Level floats become Decimal through :func:`~arbot.model.to_decimal`;
  sums and products are computed exactly (a 60-digit context, independent of the
  caller's). Fills lie on the lot grid: the book is consumed cumulatively and the
  amount taken so far is rounded **down** to the lot step at each level, so the total
  is ``min(remaining, depth within the limit)`` rounded down to the lot; a fraction of
  a lot left at one level is taken at the next (worse) level's price, never better.
* **Fees** (the market's ``taker_fee``): with :attr:`FeeAsset.RECEIVED` (the default,
  as Binance and OKX spot charge), the fee is taken from what the order receives: a
  buy pays ``amount x rate`` in base, a sell pays ``price x amount x rate`` in quote.
  With :attr:`FeeAsset.QUOTE` every fee is ``price x amount x rate`` in quote (a buy
  then spends the fee on top of the cost). Fees are exact, not rounded to a quantum.
* **Status** after matching (ccxt's unified values, as :class:`~arbot.model.OrderStatus`):
  ``filled`` when nothing remains; a GTC limit with a remainder stays ``open`` (with
  ``filled`` > 0 when it took something); every other remainder (IOC, FOK, market
  orders, whatever their time in force) is ``expired``, as Binance reports ``EXPIRED``
  for an IOC/FOK/market order that could not fill completely, with ``filled`` telling
  how much did. (OKX reports such orders ``canceled``; treat both as final.) A FOK fills
  completely or not at all.

An order that already has ``filled`` > 0 (a resting GTC met by a later book in a
backtest) matches its ``remaining`` and its ``filled``/``average_price`` accumulate.
Validation (grid, limits, balances) is the caller's job: :func:`order_problem` says
what a venue would refuse.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from decimal import (
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
    localcontext,
)
from enum import StrEnum

from arbot.model import (
    ZERO,
    Fill,
    Market,
    Order,
    OrderBook,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    to_decimal,
)

EXACT = Context(
    prec=60, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow]
)
"""Wide enough that sums and products of book floats (17 digits) and grid amounts are
exact; explicit so results do not depend on the caller's decimal context."""


class FeeAsset(StrEnum):
    """Which asset a taker fee is charged in."""

    RECEIVED = "received"
    """Base for a buy, quote for a sell (Binance and OKX spot without BNB/OKB discounts)."""
    QUOTE = "quote"
    """Always quote: a buy pays its fee on top of the cost."""


@dataclass(frozen=True, slots=True)
class Take:
    """One level's share of an order: ``amount`` of base at ``price``."""

    price: Decimal
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Execution:
    """What matching one order against one book produced.

    ``order`` carries the new ``status``, ``filled``, ``average_price`` and
    ``updated_ms``; ``fills`` are this match's executions only. ``cost`` is
    sum(price x amount) in quote and ``fee`` the sum of the fills' fees in
    ``fee_currency``. ``balance_changes`` is the signed change of holdings per asset
    (base and quote always present): a buy gains ``filled`` base and loses ``cost``
    quote, a sell the reverse, and the fee is subtracted in its currency.
    """

    order: Order
    fills: tuple[Fill, ...]
    filled: Decimal
    cost: Decimal
    fee: Decimal
    fee_currency: str
    balance_changes: dict[str, Decimal]


def fee_currency(market: Market, side: Side, fee_asset: FeeAsset = FeeAsset.RECEIVED) -> str:
    """The asset a taker fee on ``side`` is charged in under ``fee_asset``."""
    if fee_asset is FeeAsset.RECEIVED and side is Side.BUY:
        return market.base
    return market.quote


def match_levels(order: Order, book: OrderBook, market: Market) -> list[Take]:
    """The takes that ``order``'s remaining amount gets from ``book`` (see the rules).

    Honours the limit price and the lot grid; a FOK that cannot fill completely gets
    nothing. Does not look at balances or the market's minimums.
    """
    remaining = order.remaining
    if remaining <= 0:
        return []
    buying = order.side is Side.BUY
    limit = order.price if order.type is OrderType.LIMIT else None
    takes: list[Take] = []
    with localcontext(EXACT):
        depth = ZERO
        taken = ZERO
        for level_price, level_size in book.levels_for(order.side):
            if level_size <= 0:
                continue
            price = to_decimal(level_price)
            if limit is not None and (price > limit if buying else price < limit):
                break
            depth += to_decimal(level_size)
            target = market.round_amount(min(remaining, depth))
            if target > taken:
                takes.append(Take(price, target - taken))
                taken = target
                if taken >= remaining:
                    break
    fok = order.type is OrderType.LIMIT and order.time_in_force is TimeInForce.FOK
    if fok and taken < remaining:
        return []
    return takes


def fill_order(
    order: Order,
    book: OrderBook,
    market: Market,
    *,
    trade_ids: Iterator[str],
    timestamp_ms: int,
    fee_asset: FeeAsset = FeeAsset.RECEIVED,
) -> Execution:
    """Match ``order`` against ``book`` as a taker and settle the fills with ``market``'s
    taker fee.

    ``trade_ids`` supplies one id per fill (e.g. ``map(str, itertools.count(1))``);
    ``timestamp_ms`` stamps the fills and the order's ``updated_ms``.
    """
    takes = match_levels(order, book, market)
    rate = market.taker_fee
    currency = fee_currency(market, order.side, fee_asset)
    fee_on_base = currency == market.base
    fills: list[Fill] = []
    with localcontext(EXACT):
        filled = ZERO
        cost = ZERO
        fees = ZERO
        for take in takes:
            notional = take.price * take.amount
            fee = (take.amount if fee_on_base else notional) * rate
            filled += take.amount
            cost += notional
            fees += fee
            fills.append(
                Fill(
                    venue=order.venue,
                    symbol=order.symbol,
                    side=order.side,
                    amount=take.amount,
                    price=take.price,
                    fee=fee,
                    fee_currency=currency,
                    timestamp_ms=timestamp_ms,
                    client_order_id=order.client_order_id,
                    trade_id=next(trade_ids),
                )
            )
        total = order.filled + filled
        average = order.average_price
        if filled:
            previous = (order.average_price or ZERO) * order.filled
            average = (previous + cost) / total
        if total >= order.amount:
            status = OrderStatus.FILLED
        elif order.type is OrderType.LIMIT and order.time_in_force is TimeInForce.GTC:
            status = OrderStatus.OPEN
        else:
            status = OrderStatus.EXPIRED
        sign = 1 if order.side is Side.BUY else -1
        changes = {market.base: sign * filled, market.quote: -sign * cost}
        changes[currency] -= fees
    updated = replace(
        order,
        status=status,
        filled=total,
        average_price=average,
        updated_ms=timestamp_ms,
    )
    return Execution(updated, tuple(fills), filled, cost, fees, currency, changes)


def order_problem(order: Order, book: OrderBook | None, market: Market) -> str | None:
    """Why a venue would refuse ``order`` on ``market`` before matching, or ``None``.

    Limits need a price on the tick; amounts must lie on the lot grid within the
    market's limits; a market order needs liquidity on the other side, and its notional
    is checked at the best price there.
    """
    if order.symbol != market.symbol:
        return f"order symbol {order.symbol} is not the market's {market.symbol}"
    if order.type is OrderType.LIMIT:
        if order.price is None:
            return "a limit order needs a price"
        return market.order_problem(order.amount, order.price)
    levels = book.levels_for(order.side) if book is not None else []
    if not levels:
        return f"no liquidity on the {order.side.opposite} side of {order.symbol}"
    reference = market.round_limit_price(to_decimal(levels[0][0]), order.side)
    return market.order_problem(order.amount, max(reference, market.price_tick))
