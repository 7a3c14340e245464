"""Incremental triangular arbitrage on one venue: cycles of 3 (or 4) conversions.

A *cycle* is a sequence of conversions ``asset -> asset`` that ends where it started,
each through one market of the venue, either **buying** (quote -> base, walking the
asks) or **selling** (base -> quote, walking the bids). ``USDT -> BTC -> ETH -> USDT``
is ``buy BTC/USDT, buy ETH/BTC, sell ETH/USDT``.

How it works
------------
* :meth:`Triangular.on_start` enumerates every simple directed cycle of length 3 (and
  4 when ``max_cycle_length = 4``) through at least one start asset, once each, and
  indexes them by market: for each of a market's two directions, the cycles using it,
  rotated so that direction comes first. The index is rebuilt when the venue's markets
  change (the number of configured markets, or a new :class:`~arbot.model.Market`
  object for the updated symbol, e.g. a new fee).
* The hot path keeps one float per direction: the top-of-book rate after the taker fee
  (``(1 - fee) / best_ask`` for a buy, ``best_bid * (1 - fee)`` for a sell; ``0.0``
  when that side is empty or the book has not arrived). An update rewrites its market's
  two rates and tests only the cycles containing that market: the products of the other
  directions' rates are gathered with precomputed :func:`operator.itemgetter` s and
  multiplied with ``map`` (C loops, no Python per cycle) and compared, as a maximum,
  with ``threshold / rate``. Nothing else runs for an update that makes no cycle
  profitable.
* **Profitable** means: at the top-of-book rates after fees, converting a marginal
  amount around the cycle returns at least ``1 + min_edge_bps / 10_000`` times what it
  started with. Within 1e-9 (relative) of the threshold the float verdict is replaced
  by one in exact rational arithmetic (:class:`~fractions.Fraction` of the book floats
  and of the Decimal fees), so the decision is exact and reproducible.
* **Sizing.** The end-to-end amount-out function of the start amount is a composition
  of increasing concave piecewise-linear functions (one per leg: walking a ladder),
  so it is concave piecewise-linear and its slope (the marginal rate, the product of
  the legs' current level rates) only falls. The sizer merges the legs' breakpoints:
  within a segment every leg stays on one level, so the step to the next breakpoint is
  the smallest remaining level capacity expressed in start units; it advances segment
  by segment while the marginal rate is at least the threshold (the first segment is
  taken once the exact test passed), and stops at the balance of the start asset,
  ``max_notional``, the end of any ladder, or a market's ``max_amount``. Cost:
  O(levels touched). Every unit traded thus earns at least ``min_edge_bps`` at the
  book prices, so the average does too, before lot rounding.
* **Legs** are then made in exact Decimal, along the cycle: each leg's amount is
  rounded **down** to its lot step from what the previous leg delivers (after its fee),
  so no leg needs more than the previous one delivered (a buy consumes the walked cost
  of the rounded amount, a sell the amount itself); the limit price is the worst level
  the walk touches, snapped with :meth:`~arbot.model.Market.round_limit_price`; a leg
  that fails :meth:`~arbot.model.Market.order_problem` (minimum amount or notional)
  drops the cycle. The expected edge is what the last leg delivers minus what the first
  leg consumes, in the start asset; intermediate lot-rounding dust is counted as lost.
  A cycle whose edge after rounding is not positive, or with a stale book
  (:meth:`~arbot.strategy.context.StrategyContext.is_stale`), is dropped. The chain is
  sized on walked costs: a buy that walks several levels has ``amount * limit`` above
  its expected cost, which a venue reserving that much for a limit order may refuse.

Fees are modelled as a fraction of what each leg receives (base for a buy, quote for a
sell), as on Binance and OKX spot without fee discounts. Book levels are assumed to be
on the tick grid, as venues publish them; a worst level off the grid is snapped against
us, so that leg may fill less than planned.

What ``on_book`` returns: one opportunity per profitable cycle containing the updated
market (at most ``max_opportunities``), best ``edge_bps`` first. Each is sized alone
against the full balance of its start asset and the full depth, so they may overlap
(share a balance or book levels): they are alternatives, and whoever takes more than
the first must re-check balances.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal, localcontext
from fractions import Fraction
from operator import itemgetter, mul
from typing import ClassVar, Literal

from pydantic import Field

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
from arbot.strategy.base import BookKey, Strategy, StrategyParams
from arbot.strategy.context import StrategyContext

Cycle = tuple[int, ...]
"""A cycle as direction ids from its start asset: ``2 * market`` buys, ``2 * market + 1`` sells."""

_SLACK = 1e-9
"""Relative band around the threshold where the float test defers to the exact one.

Float products of 3-4 rates are within about 1e-15 of the exact value, so outside the
band the float verdict is the exact verdict."""

_DECIMAL_PRECISION = 60
"""Enough digits for products and sums of book floats (17 digits each) to stay exact."""

Gather = Callable[[list[float]], tuple[float, ...]]


class TriangularParams(StrategyParams):
    """Parameters of :class:`Triangular`."""

    venue: str | None = Field(
        default=None,
        description="Venue to trade on; by default the first venue that has markets.",
    )
    start_assets: tuple[str, ...] = Field(
        default=(),
        description=(
            "Assets a cycle may start and end in, in priority order: a cycle through "
            "several of them starts at the first listed. Empty (the default): every asset "
            "with a positive free balance on the venue when the cycle index is built, in "
            "alphabetical order."
        ),
    )
    max_cycle_length: Literal[3, 4] = Field(
        default=3,
        description=(
            "Longest cycle searched: 3 (triangles) or 4 (triangles and 4-cycles; many "
            "more cycles per market, so slower)."
        ),
    )
    min_edge_bps: Decimal = Field(
        default=Decimal(2),
        ge=0,
        description=(
            "Minimum edge after taker fees, in basis points of the start amount, at the "
            "top-of-book rates; also the marginal rate sizing keeps to."
        ),
    )
    max_notional: dict[str, Decimal] = Field(
        default_factory=dict,
        description=(
            "Largest amount a cycle may start with, per start asset, in that asset "
            "(e.g. {USDT = 1000}); an asset not listed is limited by its balance only."
        ),
    )
    max_opportunities: int | None = Field(
        default=None,
        ge=1,
        description=(
            "Most opportunities one update returns; the candidates with the best "
            "top-of-book rates are sized first. None (the default): every profitable "
            "cycle the update touches. Bounds the work when one market moves a lot and "
            "many cycles share it (4-cycles)."
        ),
    )
    fee_override: Decimal | None = Field(
        default=None,
        ge=-1,
        lt=1,
        description=(
            "Taker fee (fraction, 0.001 = 10 bps) to use on every market instead of the "
            "account's fees."
        ),
    )


class _Index:
    """The venue's markets, its cycles and the per-market checks over flat rate lists."""

    __slots__ = (
        "by_symbol",
        "checks",
        "cycles",
        "fees",
        "keep",
        "keep_exact",
        "market_count",
        "markets",
        "rates",
        "starts",
        "venue",
    )

    def __init__(
        self,
        venue: str,
        markets: list[Market],
        fees: list[Decimal],
        cycles: list[Cycle],
        starts: list[str],
        market_count: int,
    ) -> None:
        self.venue = venue
        self.markets = markets
        self.by_symbol = {market.symbol: i for i, market in enumerate(markets)}
        self.fees = fees
        self.keep = [float(1 - fee) for fee in fees]
        self.keep_exact = [1 - Fraction(fee) for fee in fees]
        self.cycles = cycles
        self.starts = starts
        self.market_count = market_count
        sentinel = 2 * len(markets)
        self.rates = [0.0] * (sentinel + 1)  # the last slot stays 0.0: pads 1-cycle groups
        groups: dict[tuple[int, int], list[int]] = {}
        for cid, cycle in enumerate(cycles):
            for direction in cycle:
                groups.setdefault((direction, len(cycle)), []).append(cid)
        checks: list[list[tuple[int, tuple[Gather, ...], tuple[int, ...]]]] = [[] for _ in markets]
        for (direction, length), cids in sorted(groups.items()):
            rests: list[list[int]] = [[] for _ in range(length - 1)]
            for cid in cids:
                cycle = cycles[cid]
                at = cycle.index(direction)
                rotated = cycle[at:] + cycle[:at]
                for position in range(1, length):
                    rests[position - 1].append(rotated[position])
            ids = tuple(cids)
            if len(cids) == 1:  # itemgetter of one index returns a scalar: pad with the 0.0
                for rest in rests:
                    rest.append(sentinel)
                ids = (*ids, -1)
            getters = tuple(itemgetter(*rest) for rest in rests)
            checks[direction >> 1].append((direction, getters, ids))
        self.checks = [tuple(entries) for entries in checks]


def venue_markets(markets: Mapping[BookKey, Market], venue: str | None) -> tuple[str, list[Market]]:
    """The chosen venue (default: the first with markets) and its markets, in order."""
    if venue is None:
        venue = next(iter(markets))[0] if markets else ""
    return venue, [market for (v, _), market in markets.items() if v == venue]


def find_cycles(
    markets: Sequence[Market], start_assets: Sequence[str] | None, max_length: int
) -> tuple[list[Cycle], list[str]]:
    """Every simple directed cycle of length 3..``max_length`` through a start asset, once.

    A cycle is listed from the first start asset (in the given order) it passes through;
    ``None`` means every asset, alphabetically. Returns the cycles and their start assets.
    """
    out: dict[str, dict[str, list[int]]] = {}
    into: dict[str, dict[str, list[int]]] = {}
    for i, market in enumerate(markets):
        if market.base == market.quote:
            continue
        for source, target, direction in (
            (market.quote, market.base, 2 * i),
            (market.base, market.quote, 2 * i + 1),
        ):
            out.setdefault(source, {}).setdefault(target, []).append(direction)
            into.setdefault(target, {}).setdefault(source, []).append(direction)
    starts = sorted(out) if start_assets is None else list(dict.fromkeys(start_assets))
    cycles: list[Cycle] = []
    cycle_starts: list[str] = []
    done: set[str] = set()
    empty: dict[str, list[int]] = {}
    for start in starts:
        first_hops = out.get(start)
        if not first_hops:
            done.add(start)
            continue
        back = into.get(start, empty)
        for b, edges_ab in first_hops.items():
            if b in done:
                continue
            for c, edges_bc in out.get(b, empty).items():
                if c == start or c in done:
                    continue
                out_c = out.get(c, empty)
                for edge_ca in out_c.get(start, ()):
                    for edge_ab in edges_ab:
                        for edge_bc in edges_bc:
                            cycles.append((edge_ab, edge_bc, edge_ca))
                            cycle_starts.append(start)
                if max_length < 4:
                    continue
                small, large = (out_c, back) if len(out_c) <= len(back) else (back, out_c)
                for d in small:
                    if d in (start, b, c) or d in done or d not in large:
                        continue
                    for edge_cd in out_c[d]:
                        for edge_da in back[d]:
                            for edge_ab in edges_ab:
                                for edge_bc in edges_bc:
                                    cycles.append((edge_ab, edge_bc, edge_cd, edge_da))
                                    cycle_starts.append(start)
        done.add(start)
    return cycles, cycle_starts


def _walk(levels: list[Level], amount: Decimal) -> tuple[Decimal, Decimal, Decimal]:
    """Exact (filled, cost, worst price) of taking ``amount`` of base from ``levels``."""
    filled = cost = worst = ZERO
    for price_f, size_f in levels:
        price = to_decimal(price_f)
        size = to_decimal(size_f)
        need = amount - filled
        worst = price
        if size >= need:
            return amount, cost + need * price, worst
        cost += size * price
        filled += size
    return filled, cost, worst


class _Cursor:
    """One leg's position on its ladder while sizing, in the leg's input units."""

    __slots__ = (
        "base_left",
        "buy",
        "keep",
        "left",
        "levels",
        "position",
        "price",
        "rate",
        "scale",
        "size",
    )

    def __init__(self, index: _Index, direction: int, levels: list[Level]) -> None:
        maximum = index.markets[direction >> 1].max_amount
        self.levels = levels
        self.buy = not direction & 1
        self.keep = index.keep[direction >> 1]
        self.base_left = float(maximum) if maximum is not None else float("inf")
        self.position = 0
        self.price = self.rate = self.left = self.size = 0.0
        self.scale = 1.0
        """This leg's input per unit of start amount, on the current segment."""

    def load(self) -> bool:
        """Enter the level at ``position``; False when the ladder or max_amount is used up."""
        if self.position >= len(self.levels) or self.base_left <= 0.0:
            return False
        price, size = self.levels[self.position]
        size = min(size, self.base_left)
        self.price = price
        if self.buy:  # input is quote
            self.rate = self.keep / price
            self.left = self.size = price * size
        else:  # input is base
            self.rate = price * self.keep
            self.left = self.size = size
        return True

    def consume(self, used: float) -> bool:
        """Take ``used`` input from the level; False when the leg can go no further."""
        self.left -= used
        self.base_left -= used / self.price if self.buy else used
        if self.left <= self.size * 1e-12:
            self.position += 1
            return self.load()
        return True


class Triangular(Strategy):
    """Triangular (and 4-cycle) arbitrage within one venue, evaluated incrementally."""

    name: ClassVar[str] = "triangular"
    Params = TriangularParams

    params: TriangularParams

    def __init__(self, params: StrategyParams | None = None) -> None:
        super().__init__(params)
        if not isinstance(self.params, TriangularParams):
            raise TypeError("Triangular needs TriangularParams")
        self._threshold_exact = 1 + Fraction(self.params.min_edge_bps) / 10_000
        self._threshold = float(self._threshold_exact)
        self._threshold_low = self._threshold * (1 - _SLACK)
        self._threshold_high = self._threshold * (1 + _SLACK)
        self._index: _Index | None = None

    # -- plugin hooks ---------------------------------------------------------------------

    def books(self, markets: Mapping[BookKey, Market]) -> Iterable[BookKey]:
        """The venue's markets that appear in at least one cycle."""
        venue, listed = venue_markets(markets, self.params.venue)
        starts = self.params.start_assets or None  # balances are not known yet: any asset
        cycles, _ = find_cycles(listed, starts, self.params.max_cycle_length)
        used = sorted({direction >> 1 for cycle in cycles for direction in cycle})
        return [(venue, listed[i].symbol) for i in used]

    def on_start(self, ctx: StrategyContext) -> None:
        self._index = self._build(ctx)

    def on_book(self, update: BookUpdate, ctx: StrategyContext) -> list[Opportunity]:
        index = self._index
        if index is None or len(ctx.markets) != index.market_count:
            index = self._index = self._build(ctx)
        if update.venue != index.venue:
            return []
        i = index.by_symbol.get(update.symbol)
        if i is None:
            return []
        if ctx.market(update.venue, update.symbol) is not index.markets[i]:
            index = self._index = self._build(ctx)
            i = index.by_symbol.get(update.symbol)
            if i is None:
                return []
        rates = index.rates
        keep = index.keep[i]
        asks = update.asks
        bids = update.bids
        rates[2 * i] = keep / asks[0][0] if asks else 0.0
        rates[2 * i + 1] = bids[0][0] * keep if bids else 0.0
        low = self._threshold_low
        hits: list[tuple[float, int]] = []
        for direction, getters, ids in index.checks[i]:
            rate = rates[direction]
            if rate <= 0.0:
                continue
            if len(getters) == 2:
                g1, g2 = getters
                if max(map(mul, g1(rates), g2(rates))) * rate < low:
                    continue
                rests = list(map(mul, g1(rates), g2(rates)))
            else:
                g1, g2, g3 = getters
                if max(map(mul, map(mul, g1(rates), g2(rates)), g3(rates))) * rate < low:
                    continue
                rests = list(map(mul, map(mul, g1(rates), g2(rates)), g3(rates)))
            for k, rest in enumerate(rests):
                if rest * rate >= low:
                    hits.append((rest * rate, ids[k]))
        if not hits:
            return []
        return self._opportunities(index, hits, ctx)

    @property
    def cycle_count(self) -> int:
        """Cycles in the index (0 before :meth:`on_start`)."""
        return len(self._index.cycles) if self._index is not None else 0

    def cycles_per_market(self) -> dict[str, int]:
        """How many indexed cycles contain each market of the venue, by symbol."""
        index = self._index
        if index is None:
            return {}
        counts = [0] * len(index.markets)
        for cycle in index.cycles:
            for direction in cycle:
                counts[direction >> 1] += 1
        return {market.symbol: counts[i] for i, market in enumerate(index.markets)}

    # -- index ----------------------------------------------------------------------------

    def _build(self, ctx: StrategyContext) -> _Index:
        markets = ctx.markets
        venue, listed = venue_markets(markets, self.params.venue)
        starts: Sequence[str] | None = self.params.start_assets
        if not starts:
            assets = {m.base for m in listed} | {m.quote for m in listed}
            starts = sorted(a for a in assets if ctx.balance(venue, a) > 0)
        cycles, cycle_starts = find_cycles(listed, starts, self.params.max_cycle_length)
        override = self.params.fee_override
        fees = [market.taker_fee if override is None else override for market in listed]
        index = _Index(venue, listed, fees, cycles, cycle_starts, len(markets))
        rates = index.rates
        for i, market in enumerate(listed):
            book = ctx.book(venue, market.symbol)
            if book is not None:
                keep = index.keep[i]
                rates[2 * i] = keep / book.asks[0][0] if book.asks else 0.0
                rates[2 * i + 1] = book.bids[0][0] * keep if book.bids else 0.0
        return index

    # -- evaluation of candidate cycles --------------------------------------------------

    def _opportunities(
        self, index: _Index, hits: list[tuple[float, int]], ctx: StrategyContext
    ) -> list[Opportunity]:
        """Size the candidates, best top-of-book rate first, up to ``max_opportunities``."""
        now_ns = ctx.now_ns
        wanted = self.params.max_opportunities
        if wanted is not None and len(hits) > wanted:
            hits.sort(reverse=True)
        opportunities = []
        for _, cid in hits:
            opportunity = self._evaluate(index, cid, ctx, now_ns)
            if opportunity is not None:
                opportunities.append(opportunity)
                if len(opportunities) == wanted:
                    break
        opportunities.sort(key=lambda o: o.edge_bps, reverse=True)
        return opportunities

    def _evaluate(
        self, index: _Index, cid: int, ctx: StrategyContext, now_ns: int
    ) -> Opportunity | None:
        venue = index.venue
        cycle = index.cycles[cid]
        books: list[OrderBook] = []
        ladders: list[list[Level]] = []
        product = 1.0
        for direction in cycle:
            i = direction >> 1
            symbol = index.markets[i].symbol
            book = ctx.book(venue, symbol)
            if book is None or ctx.is_stale(venue, symbol, now_ns):
                return None
            levels = book.bids if direction & 1 else book.asks
            if not levels:
                return None
            price = levels[0][0]
            product *= price * index.keep[i] if direction & 1 else index.keep[i] / price
            books.append(book)
            ladders.append(levels)
        if product < self._threshold_high and not self._exact_pass(index, cycle, ladders):
            return None
        start = index.starts[cid]
        cap = ctx.balance(venue, start)
        limit = self.params.max_notional.get(start)
        if limit is not None:
            cap = min(cap, limit)
        if cap <= 0:
            return None
        amount = self._size(index, cycle, ladders, float(cap))
        if amount <= 0.0:
            return None
        made = self._legs(index, cycle, ladders, min(to_decimal(amount), cap))
        if made is None:
            return None
        legs, spent, edge = made
        return Opportunity(
            strategy=self.name,
            legs=legs,
            edge_quote=edge,
            edge_bps=edge / spent * 10_000,
            quote=start,
            created_ns=now_ns,
            books=tuple(
                BookStamp(venue, book.symbol, book.timestamp_ms, book.received_ns) for book in books
            ),
        )

    def _exact_pass(self, index: _Index, cycle: Cycle, ladders: list[list[Level]]) -> bool:
        """The top-of-book test in exact rational arithmetic (needed only near the threshold)."""
        product = Fraction(1)
        for direction, levels in zip(cycle, ladders, strict=True):
            keep = index.keep_exact[direction >> 1]
            price = Fraction(levels[0][0])
            product *= price * keep if direction & 1 else keep / price
        return product >= self._threshold_exact

    def _size(self, index: _Index, cycle: Cycle, ladders: list[list[Level]], cap: float) -> float:
        """Largest start amount (<= ``cap``) whose marginal rate stays >= the threshold.

        Merges the legs' level breakpoints: within a segment each leg stays on one
        level, so the amount out is linear in the start amount.
        """
        cursors = []
        for direction, levels in zip(cycle, ladders, strict=True):
            cursor = _Cursor(index, direction, levels)
            if not cursor.load():
                return 0.0
            cursors.append(cursor)
        threshold = self._threshold
        x = 0.0
        first = True
        while True:
            product = 1.0
            for cursor in cursors:
                cursor.scale = product
                product *= cursor.rate
            if not first and product < threshold:
                return x
            first = False
            step = cap - x
            binding = None
            for cursor in cursors:
                reach = cursor.left / cursor.scale
                if reach < step:
                    step = reach
                    binding = cursor
            x += step
            if binding is None:
                return x
            for cursor in cursors:
                if not cursor.consume(cursor.left if cursor is binding else step * cursor.scale):
                    return x

    def _legs(
        self, index: _Index, cycle: Cycle, ladders: list[list[Level]], budget: Decimal
    ) -> tuple[tuple[Leg, ...], Decimal, Decimal] | None:
        """Exact legs from a start budget: (legs, start amount consumed, edge)."""
        legs: list[Leg] = []
        spent = ZERO
        with localcontext() as exact:
            exact.prec = _DECIMAL_PRECISION
            for leg, direction in enumerate(cycle):
                i = direction >> 1
                market = index.markets[i]
                levels = ladders[leg]
                if direction & 1:  # sell base for quote
                    side = Side.SELL
                    depth = sum((to_decimal(s) for _, s in levels), ZERO)
                    raw = min(budget, depth)
                else:  # buy base with quote: how much base the budget pays for
                    side = Side.BUY
                    raw = ZERO
                    money = budget
                    for price_f, size_f in levels:
                        price = to_decimal(price_f)
                        size = to_decimal(size_f)
                        if price * size <= money:
                            raw += size
                            money -= price * size
                        else:
                            raw += money / price
                            break
                if market.max_amount is not None:
                    raw = min(raw, market.max_amount)
                amount = market.round_amount(raw)
                if amount <= 0:
                    return None
                filled, cost, worst = _walk(levels, amount)
                if side is Side.BUY and cost > budget:  # a division rounded up: one lot less
                    amount -= market.amount_step
                    if amount <= 0:
                        return None
                    filled, cost, worst = _walk(levels, amount)
                if filled < amount:
                    return None
                limit = market.round_limit_price(worst, side)
                if market.order_problem(amount, limit) is not None:
                    return None
                keep = 1 - index.fees[i]
                if side is Side.BUY:
                    consumed, budget = cost, amount * keep
                else:
                    consumed, budget = amount, cost * keep
                if leg == 0:
                    spent = consumed
                legs.append(Leg(index.venue, market.symbol, side, amount, limit))
            edge = budget - spent
        if edge <= 0 or spent <= 0:
            return None
        return tuple(legs), spent, edge
