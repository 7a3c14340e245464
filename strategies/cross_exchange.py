"""Cross-exchange arbitrage sized by depth: buy where the ask is low, sell where the bid is high.

For every book update the strategy looks at each venue pair that involves the updated
venue, in both directions (buy on A and sell on B, or the reverse), and finds the size
that maximises the expected profit after the taker fee of both legs, walking both books
rather than stopping at the top level (hummingbot's ``amm_arb`` and
``cross_exchange_market_making`` size at the top of the book or at a fixed amount).

Profit of buying ``q`` on A and selling ``q`` on B::

    profit(q) = proceeds(q, B's bids) * (1 - fee_B) - cost(q, A's asks) * (1 + fee_A)

Fees are charged in quote on both legs, at the account's taker rate of each market.
The marginal profit is a non-increasing step function of ``q`` (the next ask only gets
dearer, the next bid only cheaper), so ``profit`` is concave and one merge-walk over the
two ladders finds the best size in O(levels). The same walk applies every constraint,
segment by segment (a *segment* is a stretch of ``q`` over which the worst ask and the
worst bid touched, hence the limit prices, do not change):

* **lot**: both legs trade the same amount, so it must be a multiple of both markets'
  ``amount_step``; when the steps differ it is a multiple of their least common multiple
  (0.001 and 0.01 → 0.01; 0.2 and 0.5 → 1). Rounding each leg to its own step instead
  would leave an unhedged remainder.
* **market limits** of both markets: ``min_amount``, ``max_amount``, and ``min_notional``
  at the leg's own limit price (the notional check is made exactly as
  :meth:`Market.order_problem` makes it, so a leg is never refused for it).
* **balances** (no withdrawals, so inventory is what the venues hold): the free quote on
  the buy venue covers ``q * buy limit * (1 + fee)``, what a venue locks for the order;
  the free base on the sell venue covers ``q``.
* **params**: ``min_edge_bps`` (profit after fees over the buy cost, i.e. the quote
  spent on the asks before fees), ``min_profit_quote``, ``max_notional_quote`` (on the
  buy leg: ``q * buy limit``), and ``max_inventory_skew``, defined per pair as: after
  the trade the buy venue may hold at most that fraction of the base the two venues hold
  together, ``base_A + q <= skew * (base_A + base_B)``. The sale only lowers the sell
  venue's share, so this is the one side that can cross the limit; once a venue holds
  more than its share, nothing more is bought there (trades the other way, which
  rebalance, are still allowed). ``1.0`` switches the limit off.

Every constraint is a prefix (``q`` at most something: caps, balances, the edge, since
the average edge only falls as ``q`` grows) or, for the minimums, a lower bound that is
constant within a segment, so the best lot count is the largest feasible one in a
segment where the marginal profit is positive, or the smallest feasible one in the
first segment past the peak. The walk keeps the best over segments and stops at the
peak, the first exhausted prefix constraint, or the end of a ladder.

Numbers: the walk is float maths on the book levels, with no per-level allocation and
a tolerance of 1e-9 relative that errs towards *feasible*; the lot count it picks is
then checked exactly in :class:`~decimal.Decimal` (walking only the levels it touches)
and the opportunity is built from that exact evaluation, trying the neighbouring lot
counts if a float boundary was off by one. So a proposed trade always satisfies every
constraint exactly, and the reported ``edge_quote`` is the exact profit for the
books' levels; ``edge_bps`` is ``edge_quote`` over the buy cost, in bps, floored to
1e-6. Limit prices are the worst ask and bid touched, snapped with
:meth:`Market.round_limit_price` (never loosened). A size whose worst level lies off the
market's tick (a malformed book) would need a looser limit, so it is refused; the
neighbouring lot counts are tried, and failing those the pair sits this update out.

Policy: one opportunity per update at most, the most profitable over all pairs of the
updated symbol that involve the updated venue. Pairs sharing a venue compete for the
same balances, so proposing several at once would oversize; the next update, with
balances refreshed after the fills, finds the next one. Stale books
(:meth:`StrategyContext.is_stale`), empty or one-sided books and crossed books are
skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import (
    ROUND_FLOOR,
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
    localcontext,
)
from fractions import Fraction
from math import ceil, floor, gcd, lcm
from typing import ClassVar

from pydantic import Field, field_validator

from arbot.feeds.book_feed import BookUpdate
from arbot.model import (
    ZERO,
    BookStamp,
    Leg,
    Level,
    Market,
    Opportunity,
    OrderBook,
    Side,
    to_decimal,
)
from arbot.strategy.base import BookKey, Crossing, Strategy, StrategyParams
from arbot.strategy.context import StrategyContext

__all__ = ["CrossExchange", "CrossExchangeParams"]

_UP = 1.0 + 1e-9
_DOWN = 1.0 - 1e-9
_EDGE_SLACK = 1e-12
"""Float feasibility is this much looser than exact (as a fraction of the buy cost)."""

_EXACT = Context(
    prec=60, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow]
)
_ONE = Decimal(1)
_BPS = Decimal(10_000)
_BPS_QUANTUM = Decimal("0.000001")


class CrossExchangeParams(StrategyParams):
    """``[strategy.params]`` of ``cross_exchange``."""

    min_edge_bps: float = Field(
        5.0,
        ge=0,
        le=10_000,
        allow_inf_nan=False,
        description=(
            "Smallest profit after both taker fees, in basis points of the buy cost "
            "(the quote spent on the asks, before fees). Also bounds the size: the "
            "average edge falls as the size walks deeper into the books."
        ),
    )
    min_profit_quote: float = Field(
        0.0,
        ge=0,
        allow_inf_nan=False,
        description="Smallest expected profit after fees of one opportunity, in quote.",
    )
    max_notional_quote: float | None = Field(
        None,
        gt=0,
        allow_inf_nan=False,
        description=(
            "Largest buy-leg notional (amount * buy limit price) of one opportunity, in "
            "quote; unset means only balances and market limits bound the size."
        ),
    )
    max_inventory_skew: float = Field(
        1.0,
        ge=0.5,
        le=1.0,
        allow_inf_nan=False,
        description=(
            "After a trade, the buy venue may hold at most this fraction of the base the "
            "two venues of the pair hold together (free balances); a venue already above "
            "it buys no more. 1.0 disables the limit."
        ),
    )
    symbols: tuple[str, ...] = Field(
        (),
        description="Only these symbols (e.g. 'BTC/USDT'); empty means every symbol on 2+ venues.",
    )

    @field_validator("symbols")
    @classmethod
    def _check_symbols(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for symbol in value:
            if not symbol.strip() or symbol != symbol.strip():
                raise ValueError(f"symbol {symbol!r} must be non-empty with no surrounding spaces")
        if len(set(value)) != len(value):
            raise ValueError("symbols must not repeat")
        return value


class _MarketInfo:
    """Per-market floats for the hot path, valid while ``market`` is the context's market."""

    __slots__ = ("keep", "market", "min_notional", "pay")

    def __init__(self, market: Market) -> None:
        self.market = market
        fee = float(market.taker_fee)
        self.pay = 1.0 + fee
        self.keep = 1.0 - fee
        self.min_notional = float(market.min_notional)


class _PairInfo:
    """What one (buy market, sell market) pair needs beyond the markets: the common lot."""

    __slots__ = ("buy", "k_min", "lot", "lot_f", "max_amount", "sell", "usable")
    max_amount: Decimal | None

    def __init__(self, buy: Market, sell: Market) -> None:
        self.buy = buy
        self.sell = sell
        self.usable = (
            buy.base == sell.base
            and buy.quote == sell.quote
            and buy.amount_step > 0
            and sell.amount_step > 0
            and buy.price_tick > 0
            and sell.price_tick > 0
        )
        if not self.usable:  # a market with no grid: never traded
            self.lot = _ONE
            self.lot_f = 1.0
            self.k_min = 1
            self.max_amount = ZERO
            return
        self.lot = _common_lot(buy.amount_step, sell.amount_step)
        self.lot_f = float(self.lot)
        smallest = max(buy.min_amount, sell.min_amount)
        whole = int(_EXACT.divide_int(smallest, self.lot))
        self.k_min = max(1, whole + (_EXACT.remainder(smallest, self.lot) != 0))
        caps = [m.max_amount for m in (buy, sell) if m.max_amount is not None]
        self.max_amount = min(caps) if caps else None


def _common_lot(a: Decimal, b: Decimal) -> Decimal:
    """The least common multiple of two lot steps (both positive)."""
    x, y = Fraction(a), Fraction(b)
    common = Fraction(lcm(x.numerator, y.numerator), gcd(x.denominator, y.denominator))
    # The denominator divides a power of ten, so this division is exact.
    return _EXACT.divide(Decimal(common.numerator), Decimal(common.denominator))


def _best_lots(  # noqa: PLR0915 - one flat loop: the hot maths, kept inline
    asks: list[Level],
    bids: list[Level],
    pay: float,
    keep: float,
    edge: float,
    cap_quote: float,
    min_notional_buy: float,
    min_notional_sell: float,
    min_profit: float,
    k_lo: int,
    k_hi: int,
    lot: float,
) -> tuple[int, float]:
    """Merge-walk A's asks against B's bids: the best lot count and its float profit.

    ``pay`` = 1 + fee on the buy venue, ``keep`` = 1 - fee on the sell venue, ``edge``
    the minimum edge as a fraction, ``cap_quote`` bounds ``q * buy limit`` (balance and
    max notional), ``k_lo``..``k_hi`` the lot counts the amount limits allow. Returns
    ``(0, 0.0)`` when no lot count is feasible and profitable.
    """
    n_asks = len(asks)
    n_bids = len(bids)
    i = j = 0
    pa, ra = asks[0]
    pb, rb = bids[0]
    q0 = 0.0
    p0 = 0.0  # profit at q0
    g0 = 0.0  # profit - edge * cost at q0: the edge holds while it is >= 0
    inv_lot = 1.0 / lot
    cap_static = k_hi * lot
    best_k = 0
    best_p = 0.0
    while True:
        m = pb * keep - pa * pay  # marginal profit in this segment
        g = m - pa * edge
        seg = ra if ra < rb else rb
        q1 = q0 + seg
        # Feasible q in this segment: lo <= q <= hi, and q0 < q <= q1. ``lim`` is the
        # bound of the prefix constraints, which no later segment can relax. (Plain ifs:
        # min() and max() calls cost more than the arithmetic in this loop.)
        lim = cap_quote / pa
        if cap_static < lim:  # noqa: PLR1730
            lim = cap_static
        if g < 0.0:
            t = q0 + g0 / -g
            if t < lim:  # noqa: PLR1730
                lim = t
        if m > 0.0:
            lo = q0 + (min_profit - p0) / m if min_profit > p0 else 0.0
        else:
            lo = 0.0
            if m < 0.0:
                t = q0 + (p0 - min_profit) / -m
                if t < lim:  # noqa: PLR1730
                    lim = t
            elif p0 <= 0.0 or p0 < min_profit:
                lim = -1.0
        if lim <= q0:
            break  # a prefix constraint ran out: no later size is feasible
        hi = q1 if q1 < lim else lim
        k_max = floor(hi * inv_lot * _UP)
        if k_max > k_hi:  # noqa: PLR1730
            k_max = k_hi
        k_min = floor(q0 * inv_lot * _UP) + 1
        if k_min <= k_max:
            t = min_notional_buy / pa
            if t > lo:  # noqa: PLR1730
                lo = t
            t = min_notional_sell / pb
            if t > lo:  # noqa: PLR1730
                lo = t
            k = ceil(lo * inv_lot * _DOWN)
            if k > k_min:  # noqa: PLR1730
                k_min = k
            if k_lo > k_min:  # noqa: PLR1730
                k_min = k_lo
            if k_min <= k_max:
                k = k_max if m > 0.0 else k_min
                profit = p0 + m * (k * lot - q0)
                if profit > best_p:
                    best_k = k
                    best_p = profit
                if m <= 0.0:
                    break  # past the peak: every later size earns less
        if lim < q1:
            break  # a prefix constraint ran out inside this segment
        p0 += m * seg
        g0 += g * seg
        q0 = q1
        if ra < rb:
            rb -= ra
            i += 1
            if i == n_asks:
                break
            pa, ra = asks[i]
        elif rb < ra:
            ra -= rb
            j += 1
            if j == n_bids:
                break
            pb, rb = bids[j]
        else:
            i += 1
            j += 1
            if i == n_asks or j == n_bids:
                break
            pa, ra = asks[i]
            pb, rb = bids[j]
    return best_k, best_p


def _exact_walk(levels: list[Level], amount: Decimal) -> tuple[Decimal, Decimal] | None:
    """Exact cost and worst price of taking ``amount``; ``None`` if the book is too thin."""
    left = amount
    cost = ZERO
    for price, size in levels:
        p = Decimal(repr(price))  # to_decimal, inlined: the shortest repr of the float
        s = Decimal(repr(size))
        if s >= left:
            return cost + p * left, p
        cost += p * s
        left -= s
    return None


class _Sized:
    """A pair that survived the float walk: everything the exact check needs."""

    __slots__ = (
        "base_cap",
        "buy_book",
        "k",
        "pair",
        "profit",
        "quote_free",
        "sell_book",
    )

    def __init__(
        self,
        k: int,
        profit: float,
        pair: _PairInfo,
        buy_book: OrderBook,
        sell_book: OrderBook,
        quote_free: Decimal,
        base_cap: Decimal,
    ) -> None:
        self.k = k
        self.profit = profit
        self.pair = pair
        self.buy_book = buy_book
        self.sell_book = sell_book
        self.quote_free = quote_free
        self.base_cap = base_cap


class CrossExchange(Strategy):
    """Cross-exchange arbitrage sized by depth: the fee-inclusive profit-maximising size."""

    name: ClassVar[str] = "cross_exchange"
    Params: ClassVar[type[StrategyParams]] = CrossExchangeParams
    params: CrossExchangeParams

    def __init__(self, params: StrategyParams | None = None) -> None:
        super().__init__(params)
        if not isinstance(self.params, CrossExchangeParams):
            raise TypeError("CrossExchange needs CrossExchangeParams")
        p = self.params
        self._edge = _EXACT.divide(to_decimal(p.min_edge_bps), _BPS)
        self._edge_f = p.min_edge_bps / 10_000.0 - _EDGE_SLACK
        self._min_profit = to_decimal(p.min_profit_quote)
        self._min_profit_f = p.min_profit_quote * _DOWN
        self._max_notional = (
            None if p.max_notional_quote is None else to_decimal(p.max_notional_quote)
        )
        self._max_notional_f = (
            float("inf") if p.max_notional_quote is None else p.max_notional_quote * _UP
        )
        self._skew = to_decimal(p.max_inventory_skew)
        self._allow = frozenset(p.symbols) if p.symbols else None
        self._markets: dict[BookKey, _MarketInfo] = {}
        self._pairs: dict[tuple[str, str, str], _PairInfo] = {}

    # -- plugin hooks ---------------------------------------------------------------

    def books(self, markets: Mapping[BookKey, Market]) -> Iterable[BookKey]:
        """Every book of every symbol listed on two venues or more (and allowed)."""
        venues: dict[str, int] = {}
        for _venue, symbol in markets:
            venues[symbol] = venues.get(symbol, 0) + 1
        allow = self._allow
        return [
            key for key in markets if venues[key[1]] >= 2 and (allow is None or key[1] in allow)
        ]

    def on_start(self, ctx: StrategyContext) -> None:
        for key, market in ctx.markets.items():
            self._markets[key] = _MarketInfo(market)

    def screen(self, ctx: StrategyContext) -> Sequence[Crossing]:
        """Buy on A, sell on B, for every ordered pair of venues of a traded symbol: the
        same top-of-book test :meth:`on_book` makes before it sizes anything."""
        edge = self._edge_f
        crossings = []
        for symbol in sorted({symbol for _venue, symbol in self.books(ctx.markets)}):
            venues = [v for v in ctx.venues_for(symbol) if (v, symbol) in ctx.markets]
            for buy in venues:
                buy_info = self._info(ctx, buy, symbol)
                for sell in venues:
                    sell_info = self._info(ctx, sell, symbol)
                    if sell == buy or buy_info is None or sell_info is None:
                        continue
                    crossings.append(
                        Crossing((sell, symbol), sell_info.keep, (buy, symbol), buy_info.pay + edge)
                    )
        return crossings

    def on_book(self, update: BookUpdate, ctx: StrategyContext) -> list[Opportunity]:
        symbol = update.symbol
        if self._allow is not None and symbol not in self._allow:
            return []
        venues = ctx.venues_for(symbol)
        if len(venues) < 2:
            return []
        venue = update.venue
        now = ctx.now_ns
        book = ctx.book(venue, symbol)
        if book is None or ctx.is_stale(venue, symbol, now):
            return []
        bids = book.bids
        asks = book.asks
        if not bids or not asks or bids[0][0] >= asks[0][0]:
            return []
        info = self._info(ctx, venue, symbol)
        if info is None:
            return []
        edge = self._edge_f
        ask = asks[0][0]
        bid = bids[0][0]
        ask_bar = ask * (info.pay + edge)  # what a sale elsewhere must beat, per unit
        bid_bar = bid * info.keep  # what a purchase elsewhere must stay under, per unit
        passing: list[tuple[OrderBook, _MarketInfo, bool]] | None = None
        for other in venues:
            if other == venue:
                continue
            other_book = ctx.book(other, symbol)
            if other_book is None or ctx.is_stale(other, symbol, now):
                continue
            other_bids = other_book.bids
            other_asks = other_book.asks
            if not other_bids or not other_asks or other_bids[0][0] >= other_asks[0][0]:
                continue
            other_info = self._info(ctx, other, symbol)
            if other_info is None:
                continue
            # Top of book first: if the first unit misses the edge, every size does.
            if other_bids[0][0] * other_info.keep > ask_bar:
                if passing is None:
                    passing = []
                passing.append((other_book, other_info, True))
            if bid_bar > other_asks[0][0] * (other_info.pay + edge):
                if passing is None:
                    passing = []
                passing.append((other_book, other_info, False))
        if passing is None:
            return []
        return self._decide(ctx, symbol, book, info, passing, now)

    # -- the rare path: some pair crosses after fees -------------------------------------

    def _decide(
        self,
        ctx: StrategyContext,
        symbol: str,
        book: OrderBook,
        info: _MarketInfo,
        passing: list[tuple[OrderBook, _MarketInfo, bool]],
        now: int,
    ) -> list[Opportunity]:
        with localcontext(_EXACT):
            sized: list[_Sized] = []
            for other_book, other_info, buy_here in passing:
                if buy_here:
                    found = self._size(ctx, symbol, book, other_book, info, other_info)
                else:
                    found = self._size(ctx, symbol, other_book, book, other_info, info)
                if found is not None:
                    sized.append(found)
            sized.sort(key=lambda s: s.profit, reverse=True)
            for candidate in sized:
                opportunity = self._build(candidate, symbol, now)
                if opportunity is not None:
                    return [opportunity]
        return []

    def _info(self, ctx: StrategyContext, venue: str, symbol: str) -> _MarketInfo | None:
        market = ctx.market(venue, symbol)
        if market is None:
            return None
        key = (venue, symbol)
        info = self._markets.get(key)
        if info is None or info.market is not market:
            info = self._markets[key] = _MarketInfo(market)
        return info

    def _pair(self, buy: Market, sell: Market) -> _PairInfo:
        key = (buy.venue, sell.venue, buy.symbol)
        pair = self._pairs.get(key)
        if pair is None or pair.buy is not buy or pair.sell is not sell:
            pair = self._pairs[key] = _PairInfo(buy, sell)
        return pair

    def _size(
        self,
        ctx: StrategyContext,
        symbol: str,
        buy_book: OrderBook,
        sell_book: OrderBook,
        buy_info: _MarketInfo,
        sell_info: _MarketInfo,
    ) -> _Sized | None:
        """The float walk for one direction, after the amount caps are fixed exactly."""
        buy = buy_info.market
        sell = sell_info.market
        pair = self._pair(buy, sell)
        if not pair.usable:
            return None
        base_sell = ctx.balance(sell.venue, sell.base)
        cap = base_sell
        if pair.max_amount is not None and pair.max_amount < cap:
            cap = pair.max_amount
        if self._skew < _ONE:
            base_buy = ctx.balance(buy.venue, buy.base)
            room = self._skew * (base_buy + base_sell) - base_buy
            cap = min(cap, room)
        if cap <= 0:
            return None
        k_hi = int(cap // pair.lot)
        if k_hi < pair.k_min:
            return None
        quote_free = ctx.balance(buy.venue, buy.quote)
        cap_quote = float(quote_free) / buy_info.pay * _UP
        cap_quote = min(cap_quote, self._max_notional_f)
        k, profit = _best_lots(
            buy_book.asks,
            sell_book.bids,
            buy_info.pay,
            sell_info.keep,
            self._edge_f,
            cap_quote,
            buy_info.min_notional * _DOWN,
            sell_info.min_notional * _DOWN,
            self._min_profit_f,
            pair.k_min,
            k_hi,
            pair.lot_f,
        )
        if k == 0:
            return None
        return _Sized(k, profit, pair, buy_book, sell_book, quote_free, cap)

    def _exact(
        self, s: _Sized, k: int
    ) -> tuple[Decimal, Decimal, Decimal, Decimal, Decimal] | None:
        """Check lot count ``k`` exactly: (amount, profit, buy cost, buy limit, sell limit)."""
        pair = s.pair
        amount = pair.lot * k
        if k < pair.k_min or amount > s.base_cap:
            return None
        bought = _exact_walk(s.buy_book.asks, amount)
        sold = _exact_walk(s.sell_book.bids, amount)
        if bought is None or sold is None:
            return None
        cost, worst_ask = bought
        proceeds, worst_bid = sold
        buy = pair.buy
        sell = pair.sell
        buy_limit = buy.round_limit_price(worst_ask, Side.BUY)
        sell_limit = sell.round_limit_price(worst_bid, Side.SELL)
        if buy_limit != worst_ask or sell_limit != worst_bid:
            return None  # an off-tick level: the snapped limit would not reach it
        if buy.order_problem(amount, buy_limit) or sell.order_problem(amount, sell_limit):
            return None
        notional = amount * buy_limit
        if notional * (_ONE + buy.taker_fee) > s.quote_free:
            return None
        if self._max_notional is not None and notional > self._max_notional:
            return None
        profit = proceeds * (_ONE - sell.taker_fee) - cost * (_ONE + buy.taker_fee)
        if profit <= 0 or profit < self._min_profit or profit < self._edge * cost:
            return None
        return amount, profit, cost, buy_limit, sell_limit

    def _build(self, s: _Sized, symbol: str, now: int) -> Opportunity | None:
        """Verify the float choice exactly (or a neighbour if a boundary was off by one)."""
        found = self._exact(s, s.k)
        if found is None:
            below = self._exact(s, s.k - 1)
            above = self._exact(s, s.k + 1)
            better_above = below is None or (above is not None and above[1] > below[1])
            found = above if better_above else below
            if found is None:
                return None
        amount, profit, cost, buy_limit, sell_limit = found
        buy_book = s.buy_book
        sell_book = s.sell_book
        edge_bps = (profit * _BPS / cost).quantize(_BPS_QUANTUM, rounding=ROUND_FLOOR)
        return Opportunity(
            strategy=self.name,
            legs=(
                Leg(buy_book.venue, symbol, Side.BUY, amount, buy_limit),
                Leg(sell_book.venue, symbol, Side.SELL, amount, sell_limit),
            ),
            edge_quote=profit,
            edge_bps=edge_bps,
            quote=s.pair.buy.quote,
            created_ns=now,
            books=(
                BookStamp(buy_book.venue, symbol, buy_book.timestamp_ms, buy_book.received_ns),
                BookStamp(sell_book.venue, symbol, sell_book.timestamp_ms, sell_book.received_ns),
            ),
        )
