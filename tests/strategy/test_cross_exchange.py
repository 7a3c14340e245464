"""cross_exchange: exact, optimal, constraint-respecting sizing, checked against brute force.

The reference here is written independently of the strategy: it walks the books in exact
``Decimal`` arithmetic (a 100-digit context, and only +, - and * are used, so nothing is
rounded) for *every* lot multiple up to the caps and keeps the most profitable feasible
one. The strategy sizes with floats and checks its choice exactly, so its answer must be
exactly feasible and as profitable as the reference's best. The one tolerance: a size
whose edge or profit sits within 1e-9 (relative) of a threshold may go either way, since
float maths cannot tell "equal" from "a hair below"; such sizes are allowed but not
required.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Context, Decimal, localcontext

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arbot.errors import ConfigError
from arbot.feeds.book_feed import BookUpdate
from arbot.model import Balance, Level, Market, Opportunity, Side, to_decimal
from arbot.strategy.context import MarketState, StrategyContext
from strategies.cross_exchange import CrossExchange, CrossExchangeParams

SYMBOL = "BTC/USDT"
NOW = 1_700_000_000_000_000_000
EXACT = Context(prec=100)
TOL = Decimal("1e-9")


def market(
    venue: str,
    *,
    tick: str = "0.01",
    step: str = "0.001",
    fee: str = "0.001",
    min_amount: str = "0",
    min_notional: str = "0",
    max_amount: str | None = None,
    symbol: str = SYMBOL,
) -> Market:
    base, quote = symbol.split("/")
    return Market(
        venue,
        symbol,
        base,
        quote,
        Decimal(tick),
        Decimal(step),
        min_amount=Decimal(min_amount),
        min_notional=Decimal(min_notional),
        max_amount=None if max_amount is None else Decimal(max_amount),
        taker_fee=Decimal(fee),
    )


def rich(*venues: str, quote: str = "1000000", base: str = "1000") -> list[Balance]:
    out = []
    for venue in venues:
        out += [Balance(venue, "USDT", Decimal(quote)), Balance(venue, "BTC", Decimal(base))]
    return out


class World:
    """A MarketState with a settable clock, feeding updates to one strategy."""

    def __init__(
        self, markets: list[Market], balances: list[Balance], strategy: CrossExchange
    ) -> None:
        self.now = NOW
        self.state = MarketState(markets, balances=balances, clock=lambda: self.now)
        self.ctx: StrategyContext = self.state.context()
        self.strategy = strategy
        strategy.on_start(self.ctx)

    def book(
        self,
        venue: str,
        bids: list[Level],
        asks: list[Level],
        *,
        age_ms: float = 0.0,
        symbol: str = SYMBOL,
    ) -> list[Opportunity]:
        update = BookUpdate(
            venue, symbol, bids, asks, self.now // 1_000_000, self.now - int(age_ms * 1e6), None
        )
        self.state.apply(update)
        return self.strategy.on_book(update, self.ctx)


def strategy(**params: object) -> CrossExchange:
    built = CrossExchange.from_params(params)
    assert isinstance(built, CrossExchange)
    return built


# -- the independent reference -------------------------------------------------------


@dataclass(frozen=True)
class Evaluated:
    profit: Decimal
    cost: Decimal
    buy_limit: Decimal
    sell_limit: Decimal
    clear: bool  # feasible with a margin above every threshold


def common_lot(a: Decimal, b: Decimal) -> Decimal:
    n = 1
    while (a * n) % b != 0:
        n += 1
    return a * n


def take(levels: list[Level], amount: Decimal) -> tuple[Decimal, Decimal] | None:
    """Exact (cost, worst price) of taking ``amount``; None when the book is too thin."""
    got = Decimal(0)
    cost = Decimal(0)
    for price, size in levels:
        p, s = to_decimal(price), to_decimal(size)
        part = min(s, amount - got)
        cost += part * p
        got += part
        if got == amount:
            return cost, p
    return None


def depth_at(levels: list[Level], limit: Decimal, side: Side) -> Decimal:
    total = Decimal(0)
    for price, size in levels:
        p = to_decimal(price)
        if (p > limit) if side is Side.BUY else (p < limit):
            break
        total += to_decimal(size)
    return total


def evaluate(
    amount: Decimal,
    buy: Market,
    sell: Market,
    asks: list[Level],
    bids: list[Level],
    balances: dict[tuple[str, str], Decimal],
    params: CrossExchangeParams,
) -> Evaluated | None:
    """Every rule, exactly, for buying ``amount`` on ``buy`` and selling it on ``sell``."""
    with localcontext(EXACT):
        if amount <= 0 or amount % buy.amount_step or amount % sell.amount_step:
            return None
        bought, sold = take(asks, amount), take(bids, amount)
        if bought is None or sold is None:
            return None
        cost, worst_ask = bought
        proceeds, worst_bid = sold
        buy_limit = buy.round_limit_price(worst_ask, Side.BUY)
        sell_limit = sell.round_limit_price(worst_bid, Side.SELL)
        if depth_at(asks, buy_limit, Side.BUY) < amount:
            return None
        if depth_at(bids, sell_limit, Side.SELL) < amount:
            return None
        if buy.order_problem(amount, buy_limit) or sell.order_problem(amount, sell_limit):
            return None
        quote_free = balances.get((buy.venue, "USDT"), Decimal(0))
        base_buy = balances.get((buy.venue, "BTC"), Decimal(0))
        base_sell = balances.get((sell.venue, "BTC"), Decimal(0))
        if amount * buy_limit * (1 + buy.taker_fee) > quote_free:
            return None
        if amount > base_sell:
            return None
        if params.max_notional_quote is not None and amount * buy_limit > to_decimal(
            params.max_notional_quote
        ):
            return None
        skew = to_decimal(params.max_inventory_skew)
        if base_buy + amount > skew * (base_buy + base_sell):
            return None
        profit = proceeds * (1 - sell.taker_fee) - cost * (1 + buy.taker_fee)
        edge = to_decimal(params.min_edge_bps) / 10_000
        min_profit = to_decimal(params.min_profit_quote)
        if profit <= 0 or profit < min_profit or profit < edge * cost:
            return None
        clear = profit >= (edge + TOL) * cost and profit >= min_profit + TOL * profit
        return Evaluated(profit, cost, buy_limit, sell_limit, clear)


def brute_force(
    buy: Market,
    sell: Market,
    asks: list[Level],
    bids: list[Level],
    balances: dict[tuple[str, str], Decimal],
    params: CrossExchangeParams,
) -> tuple[Decimal | None, Decimal | None]:
    """(best profit of any feasible size, best profit of a clearly feasible size)."""
    lot = common_lot(buy.amount_step, sell.amount_step)
    top = min(
        sum((to_decimal(s) for _, s in asks), Decimal(0)),
        sum((to_decimal(s) for _, s in bids), Decimal(0)),
    )
    best: Decimal | None = None
    best_clear: Decimal | None = None
    k = 1
    while lot * k <= top:
        found = evaluate(lot * k, buy, sell, asks, bids, balances, params)
        if found is not None:
            if best is None or found.profit > best:
                best = found.profit
            if found.clear and (best_clear is None or found.profit > best_clear):
                best_clear = found.profit
        k += 1
    return best, best_clear


# -- property tests ------------------------------------------------------------------


@st.composite
def ladder(draw: st.DrawFn, tick: Decimal, step: Decimal, start: int, up: bool) -> list[Level]:
    """1-5 levels ``tick`` apart from ``start`` ticks (sometimes a big jump), amounts on the lot."""
    n = draw(st.integers(1, 5))
    levels: list[Level] = []
    at = start
    for _ in range(n):
        amount = step * draw(st.integers(1, 12))
        levels.append((float(tick * at), float(amount)))
        at += draw(st.sampled_from([1, 1, 2, 3, 40])) * (1 if up else -1)
    return levels


@dataclass
class Case:
    markets: dict[str, Market]
    books: dict[str, tuple[list[Level], list[Level]]]
    balances: dict[tuple[str, str], Decimal]
    params: CrossExchangeParams
    updated: str

    def on_grid(self) -> bool:
        """Every book price is on its market's tick (as real venues' books are)."""
        return all(
            to_decimal(price) % self.markets[venue].price_tick == 0
            for venue, (bids, asks) in self.books.items()
            for price, _ in bids + asks
        )


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """Two venues; amounts, notionals, balances and caps are scaled to ``lot_value``."""
    unit = Decimal(draw(st.sampled_from(["0.001", "0.01", "0.1"])))
    tick = Decimal(draw(st.sampled_from(["0.01", "0.1", "0.5"])))
    # Mids of 1000 ticks (prices of 10 to 500, a tick is 10 bps). Mostly b's mid is
    # moved so that the books cross by 1-30 ticks one way or the other; else at random.
    lot_value = tick * 1000 * unit  # the quote value of one unit of amount
    cross = draw(st.sampled_from([1, -1, 0]))
    shift = draw(st.integers(1, 30)) if cross else draw(st.integers(-25, 25))
    markets: dict[str, Market] = {}
    books: dict[str, tuple[list[Level], list[Level]]] = {}
    for venue in ("a", "b"):
        step = unit * draw(st.sampled_from([1, 2, 5]))
        markets[venue] = Market(
            venue,
            SYMBOL,
            "BTC",
            "USDT",
            tick,
            step,
            min_amount=step * draw(st.sampled_from([0, 0, 0, 1, 3, 8])),
            min_notional=lot_value * draw(st.sampled_from([0, 0, 0, 1, 3, 10])),
            max_amount=draw(st.sampled_from([None, None, None, step * 7, step * 40])),
            taker_fee=Decimal(draw(st.integers(0, 30))) / 10_000,
        )
        half = draw(st.integers(1, 2))
        mid = 1000 if venue == "a" else 1000 + (cross * (4 + shift) if cross else shift)
        # Rarely, a malformed book with levels between the market's ticks.
        grid, at = (tick / 2, 2) if draw(st.integers(0, 9)) == 0 else (tick, 1)
        bids = draw(ladder(grid, step, (mid - half) * at - draw(st.integers(0, at - 1)), False))
        asks = draw(ladder(grid, step, (mid + half) * at + draw(st.integers(0, at - 1)), True))
        books[venue] = (bids, asks)
    balances: dict[tuple[str, str], Decimal] = {}
    for venue in ("a", "b"):
        odd = draw(st.sampled_from([1, 1, 7]))  # 7: a balance off every grid
        balances[(venue, "USDT")] = lot_value * draw(st.integers(0, 400)) / odd
        balances[(venue, "BTC")] = unit * draw(st.integers(0, 400)) / odd
    scale = float(lot_value)
    params = CrossExchangeParams(
        min_edge_bps=draw(st.sampled_from([0.0, 1.0, 5.0, 12.5, 40.0])),
        min_profit_quote=scale * draw(st.sampled_from([0.0, 0.0, 0.0, 0.001, 0.02])),
        max_notional_quote=draw(st.sampled_from([None, None, scale * 5, scale * 33.3])),
        max_inventory_skew=draw(st.sampled_from([1.0, 1.0, 0.9, 0.6, 0.5])),
    )
    return Case(markets, books, balances, params, draw(st.sampled_from(["a", "b"])))


def run(case: Case) -> list[Opportunity]:
    balances = [Balance(v, a, amount) for (v, a), amount in case.balances.items()]
    world = World(list(case.markets.values()), balances, CrossExchange(case.params))
    other = "b" if case.updated == "a" else "a"
    world.book(other, *case.books[other], age_ms=5)
    return world.book(case.updated, *case.books[case.updated])


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_proposals_are_exactly_feasible_and_optimal(case: Case) -> None:
    found = run(case)
    assert len(found) <= 1
    best: Decimal | None = None
    best_clear: Decimal | None = None
    for buy_venue, sell_venue in (("a", "b"), ("b", "a")):
        any_, clear = brute_force(
            case.markets[buy_venue],
            case.markets[sell_venue],
            case.books[buy_venue][1],
            case.books[sell_venue][0],
            case.balances,
            case.params,
        )
        if any_ is not None and (best is None or any_ > best):
            best = any_
        if clear is not None and (best_clear is None or clear > best_clear):
            best_clear = clear
    # Off-tick levels cannot be reached by a snapped limit: the strategy may then give up
    # on a pair rather than search around them, so optimality is only claimed on the grid.
    optimal = case.on_grid()
    if not found:
        # 4. no missed trades: nothing clearly feasible was there to take.
        assert best_clear is None or not optimal, f"missed a trade worth {best_clear}"
        return
    (opp,) = found
    buy_leg, sell_leg = opp.legs
    assert (buy_leg.side, sell_leg.side) == (Side.BUY, Side.SELL)
    assert buy_leg.amount == sell_leg.amount
    buy, sell = case.markets[buy_leg.venue], case.markets[sell_leg.venue]
    asks, bids = case.books[buy_leg.venue][1], case.books[sell_leg.venue][0]
    # 1-3. exactly feasible: edge, depth at the limits, balances, max notional, grid, minimums.
    exact = evaluate(buy_leg.amount, buy, sell, asks, bids, case.balances, case.params)
    assert exact is not None, "the proposal breaks a rule"
    assert buy.order_problem(buy_leg.amount, buy_leg.limit_price) is None
    assert sell.order_problem(sell_leg.amount, sell_leg.limit_price) is None
    assert (buy_leg.limit_price, sell_leg.limit_price) == (exact.buy_limit, exact.sell_limit)
    assert depth_at(asks, buy_leg.limit_price, Side.BUY) >= buy_leg.amount
    assert depth_at(bids, sell_leg.limit_price, Side.SELL) >= sell_leg.amount
    assert opp.edge_quote == exact.profit
    assert opp.edge_bps >= to_decimal(case.params.min_edge_bps)
    assert abs(opp.edge_bps - exact.profit / exact.cost * 10_000) <= Decimal("0.000001")
    # 4. optimal: as good as the best clearly feasible size, and no better than any.
    assert best is not None
    assert exact.profit <= best
    if best_clear is not None and optimal:
        assert exact.profit >= best_clear * (1 - TOL), (exact.profit, best_clear)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_the_screen_holds_whenever_a_trade_is_proposed(case: Case) -> None:
    """Backtests skip updates where no screen test holds (arbot.backtest.columnar), so a
    proposal where none holds would be an opportunity a backtest silently misses."""
    balances = [Balance(v, a, amount) for (v, a), amount in case.balances.items()]
    world = World(list(case.markets.values()), balances, CrossExchange(case.params))
    crossings = world.strategy.screen(world.ctx)
    assert len(crossings) == 2  # a -> b and b -> a
    other = "b" if case.updated == "a" else "a"
    world.book(other, *case.books[other], age_ms=5)
    found = world.book(case.updated, *case.books[case.updated])
    holds = False
    for c in crossings:
        sell_bids, buy_asks = case.books[c.sell[0]][0], case.books[c.buy[0]][1]
        if (
            sell_bids
            and buy_asks
            and sell_bids[0][0] * c.sell_factor > buy_asks[0][0] * c.buy_factor
        ):
            holds = True
    if found:
        assert holds, "a proposal the screen would have hidden"


@settings(max_examples=500, deadline=None)
@given(
    fee_a=st.integers(0, 30),
    fee_b=st.integers(0, 30),
    edge_bps=st.sampled_from([0.0, 1.0, 5.0]),
    margin=st.floats(-0.002, 0.002),
)
def test_the_screen_holds_for_every_proposal_near_the_threshold(
    fee_a: int, fee_b: int, edge_bps: float, margin: float
) -> None:
    """Books that cross by about what fees and edge take, where a screen that is a
    hair too strict would hide proposals."""
    markets = [
        market("a", tick="0.0001", fee=str(fee_a / 10_000)),
        market("b", tick="0.0001", fee=str(fee_b / 10_000)),
    ]
    world = World(markets, rich("a", "b"), strategy(min_edge_bps=edge_bps))
    crossings = world.strategy.screen(world.ctx)
    ask = 100.0
    bar = ask * (1 + fee_a / 10_000 + edge_bps / 10_000) / (1 - fee_b / 10_000)
    bid = round(bar * (1 + margin), 4)
    world.book("a", [(99.0, 5.0)], [(ask, 5.0)], age_ms=1)
    found = world.book("b", [(bid, 5.0)], [(bid + 1.0, 5.0)])
    holds = any(
        c.sell == ("b", SYMBOL) and bid * c.sell_factor > ask * c.buy_factor for c in crossings
    )
    if found:
        assert holds, "a proposal the screen would have hidden"


@settings(max_examples=150, deadline=None)
@given(cases(), st.integers(1, 10_000))
def test_stale_other_book_is_never_used(case: Case, age_over_ms: int) -> None:
    balances = [Balance(v, a, amount) for (v, a), amount in case.balances.items()]
    world = World(list(case.markets.values()), balances, CrossExchange(case.params))
    other = "b" if case.updated == "a" else "a"
    world.book(other, *case.books[other], age_ms=world.state.max_book_age_ms + age_over_ms)
    assert world.book(case.updated, *case.books[case.updated]) == []


# -- examples --------------------------------------------------------------------------


def test_two_level_example_by_hand() -> None:
    """Buy 1 @ 100 + 0.5 @ 100.2 on a, sell 0.5 @ 101 + 1 @ 100.5 on b, 10 bps each.

    The next stretch would buy at 100.2 and sell at 100.3:
    100.3 * 0.999 - 100.2 * 1.001 = -0.1005 per unit, so 1.5 is the peak.
    Profit = 151.0 * 0.999 - 150.1 * 1.001 = 150.849 - 150.2501 = 0.5989.
    """
    world = World([market("a"), market("b")], rich("a", "b"), strategy(min_edge_bps=5))
    assert world.book("a", [(99.0, 1.0)], [(100.0, 1.0), (100.2, 2.0), (101.0, 5.0)]) == []
    (opp,) = world.book("b", [(101.0, 0.5), (100.5, 1.0), (100.3, 3.0)], [(102.0, 1.0)])
    buy, sell = opp.legs
    assert (buy.venue, buy.side, buy.amount, buy.limit_price) == (
        "a",
        Side.BUY,
        Decimal("1.5"),
        Decimal("100.2"),
    )
    assert (sell.venue, sell.side, sell.amount, sell.limit_price) == (
        "b",
        Side.SELL,
        Decimal("1.5"),
        Decimal("100.5"),
    )
    assert opp.edge_quote == Decimal("0.5989")
    assert opp.edge_bps == Decimal("39.900066")  # 0.5989 / 150.1 * 1e4, floored
    assert opp.quote == "USDT"
    assert opp.created_ns == NOW
    assert [(b.venue, b.received_ns) for b in opp.books] == [("a", NOW), ("b", NOW)]
    assert opp.strategy == "cross_exchange"


def test_edge_threshold_stops_the_size_before_the_profit_peak() -> None:
    """No fees. The first unit earns 1 on 100 (100 bps); each further unit earns 0.5 on
    100.5, so past q = 1 the average edge falls towards 50 bps. At 80 bps, with x = q - 1:
    1 + 0.5 x >= 0.008 (100 + 100.5 x)  <=>  x <= 0.2 / 0.304 = 0.6578...  ->  q = 1.657,
    although profit keeps growing up to q = 3 (the bid's depth).
    """
    world = World(
        [market("a", fee="0"), market("b", fee="0")], rich("a", "b"), strategy(min_edge_bps=80)
    )
    world.book("a", [(98.0, 1.0)], [(100.0, 1.0), (100.5, 5.0)])
    (opp,) = world.book("b", [(101.0, 3.0)], [(103.0, 1.0)])
    assert opp.legs[0].amount == Decimal("1.657")
    assert opp.edge_quote == Decimal("1.3285")  # 1 + 0.5 * 0.657
    assert opp.edge_bps >= 80
    at_peak = World([market("a", fee="0"), market("b", fee="0")], rich("a", "b"), strategy())
    at_peak.book("a", [(98.0, 1.0)], [(100.0, 1.0), (100.5, 5.0)])
    (opp,) = at_peak.book("b", [(101.0, 3.0)], [(103.0, 1.0)])
    assert opp.legs[0].amount == Decimal("3")


def test_float_residue_of_a_level_does_not_end_the_walk() -> None:
    """Found by hypothesis: 0.02 - 0.005 - 0.005 leaves 0.009999999999999998 of the first
    ask against 0.01 of the third bid, so the walk meets a bid "level" of 1.7e-18. Such a
    sliver must not read as a constraint running out: 0.025 earns 0.00076, 0.02 only
    0.00075 (no fees; the quote balance allows 0.025 x 10.02 = 0.2505 <= 0.26).
    """
    balances = [Balance("a", "USDT", Decimal("0.26")), Balance("b", "BTC", Decimal("0.025"))]
    world = World(
        [market("a", step="0.005", fee="0"), market("b", step="0.001", fee="0")],
        balances,
        strategy(min_edge_bps=0),
    )
    world.book(
        "b",
        [(10.06, 0.005), (10.05, 0.005), (10.04, 0.01), (10.03, 0.001), (10.02, 0.004)],
        [(10.08, 0.001)],
    )
    (opp,) = world.book("a", [(9.99, 0.005)], [(10.01, 0.02), (10.02, 0.005)])
    assert opp.legs[0].amount == Decimal("0.025")
    assert opp.edge_quote == Decimal("0.00076")


def test_stale_book_is_skipped_until_refreshed() -> None:
    world = World([market("a"), market("b")], rich("a", "b"), strategy())
    world.book("a", [(99.0, 1.0)], [(100.0, 1.0)], age_ms=5_000)
    assert world.book("b", [(102.0, 1.0)], [(103.0, 1.0)]) == []
    (opp,) = world.book("a", [(99.0, 1.0)], [(100.0, 1.0)])
    assert [leg.venue for leg in opp.legs] == ["a", "b"]
    # The updated book itself being stale (a replayed old update) proposes nothing.
    assert world.book("a", [(99.0, 1.0)], [(100.0, 1.0)], age_ms=5_000) == []


def test_crossed_and_empty_books_are_skipped() -> None:
    world = World([market("a"), market("b")], rich("a", "b"), strategy())
    world.book("a", [(100.5, 1.0)], [(100.0, 1.0)])  # crossed
    assert world.book("b", [(102.0, 1.0)], [(103.0, 1.0)]) == []
    world.book("a", [], [(100.0, 1.0)])  # one-sided
    assert world.book("b", [(102.0, 1.0)], [(103.0, 1.0)]) == []
    assert world.book("a", [], []) == []


def test_both_directions() -> None:
    world = World([market("a"), market("b")], rich("a", "b"), strategy())
    world.book("a", [(99.0, 1.0)], [(100.0, 1.0)])
    (opp,) = world.book("b", [(102.0, 1.0)], [(103.0, 1.0)])
    assert [(leg.venue, leg.side) for leg in opp.legs] == [("a", Side.BUY), ("b", Side.SELL)]
    (opp,) = world.book("a", [(105.0, 1.0)], [(106.0, 1.0)])
    assert [(leg.venue, leg.side) for leg in opp.legs] == [("b", Side.BUY), ("a", Side.SELL)]
    assert opp.legs[0].limit_price == Decimal("103")


def test_three_venues_pick_the_best_pair() -> None:
    venues = ("a", "b", "c")
    world = World([market(v) for v in venues], rich(*venues), strategy())
    world.book("b", [(101.0, 1.0)], [(101.5, 1.0)])
    world.book("c", [(103.0, 1.0)], [(103.5, 1.0)])
    (opp,) = world.book("a", [(99.0, 1.0)], [(100.0, 1.0)])
    assert [leg.venue for leg in opp.legs] == ["a", "c"]
    # A deeper but thinner-margin pair beats a richer but shallower one.
    world.book("b", [(102.0, 5.0)], [(102.5, 1.0)])
    (opp,) = world.book("a", [(99.0, 1.0)], [(100.0, 5.0)])
    assert [leg.venue for leg in opp.legs] == ["a", "b"]  # 5 x ~1.8 beats 1 x ~2.8
    assert opp.legs[0].amount == Decimal("5")


def test_skew_limit_blocks_buying_on_a_venue_already_holding_most_base() -> None:
    balances = [
        Balance("a", "USDT", Decimal(10_000)),
        Balance("b", "USDT", Decimal(10_000)),
        Balance("a", "BTC", Decimal(9)),
        Balance("b", "BTC", Decimal(1)),
    ]
    world = World([market("a"), market("b")], balances, strategy(max_inventory_skew=0.8))
    world.book("a", [(99.0, 5.0)], [(100.0, 5.0)])
    # a holds 90% of the base: buying more on a is refused even though b's bid is rich.
    assert world.book("b", [(102.0, 5.0)], [(103.0, 5.0)]) == []
    # The other way rebalances and is allowed (a sells, b buys).
    (opp,) = world.book("a", [(105.0, 5.0)], [(106.0, 5.0)])
    assert [(leg.venue, leg.side) for leg in opp.legs] == [("b", Side.BUY), ("a", Side.SELL)]
    # With a=6, b=4 (60%), a may buy up to 2 (to hold 8 of 10).
    world.state.set_balance("a", "BTC", Decimal(6))
    world.state.set_balance("b", "BTC", Decimal(4))
    world.book("a", [(99.0, 5.0)], [(100.0, 5.0)])
    (opp,) = world.book("b", [(102.0, 5.0)], [(103.0, 5.0)])
    assert opp.legs[0].venue == "a"
    assert opp.legs[0].amount == Decimal("2")


def test_balances_and_max_notional_cap_the_size() -> None:
    balances = [
        Balance("a", "USDT", Decimal("250.25")),  # 2.5 x 100 x 1.001 = 250.25: exactly 2.5
        Balance("b", "BTC", Decimal(10)),
    ]
    world = World([market("a"), market("b")], balances, strategy())
    world.book("a", [(99.0, 5.0)], [(100.0, 5.0)])
    (opp,) = world.book("b", [(102.0, 5.0)], [(103.0, 5.0)])
    assert opp.legs[0].amount == Decimal("2.5")
    world.state.set_balance("b", "BTC", Decimal("1.234"))
    (opp,) = world.book("b", [(102.0, 5.0)], [(103.0, 5.0)])
    assert opp.legs[0].amount == Decimal("1.234")
    capped = World([market("a"), market("b")], rich("a", "b"), strategy(max_notional_quote=150))
    capped.book("a", [(99.0, 5.0)], [(100.0, 5.0)])
    (opp,) = capped.book("b", [(102.0, 5.0)], [(103.0, 5.0)])
    assert opp.legs[0].amount == Decimal("1.5")


def test_different_lot_steps_trade_a_common_multiple() -> None:
    world = World([market("a", step="0.2"), market("b", step="0.5")], rich("a", "b"), strategy())
    world.book("a", [(99.0, 4.0)], [(100.0, 3.8)])
    (opp,) = world.book("b", [(102.0, 5.0)], [(103.0, 5.0)])
    assert opp.legs[0].amount == opp.legs[1].amount == Decimal("3")  # lcm(0.2, 0.5) = 1


def test_minimum_notional_on_both_markets() -> None:
    """Only 0.04 crosses at a's best ask, and 0.04 x 100 = 4 is below a's minimum of 5.

    The buy limit then has to reach 110: 0.046 x 110 = 5.06 >= 5, and the 0.006 bought at
    110 costs less than the 0.04 earns: 0.046 x 102 x 0.999 - (4 + 0.66) x 1.001 = 0.022648.
    """
    world = World(
        [market("a", min_notional="5"), market("b")], rich("a", "b"), strategy(min_edge_bps=0)
    )
    world.book("a", [(99.0, 1.0)], [(100.0, 0.04), (110.0, 5.0)])
    (opp,) = world.book("b", [(102.0, 5.0)], [(103.0, 5.0)])
    assert [(leg.amount, leg.limit_price) for leg in opp.legs] == [
        (Decimal("0.046"), Decimal("110")),
        (Decimal("0.046"), Decimal("102")),
    ]
    assert opp.edge_quote == Decimal("0.022648")
    # With b's minimum too, 0.049 is needed (x 102 >= 5) and that loses money.
    both = World(
        [market("a", min_notional="5"), market("b", min_notional="5")],
        rich("a", "b"),
        strategy(min_edge_bps=0),
    )
    both.book("a", [(99.0, 1.0)], [(100.0, 0.04), (110.0, 5.0)])
    assert both.book("b", [(102.0, 5.0)], [(103.0, 5.0)]) == []


def test_markets_added_or_replaced_later_are_picked_up() -> None:
    world = World([market("a")], rich("a", "b"), strategy())
    world.book("a", [(99.0, 1.0)], [(100.0, 1.0)])
    assert world.book("b", [(102.0, 1.0)], [(103.0, 1.0)]) == []  # b is not a market yet
    world.state.add_market(market("b"))
    assert len(world.book("b", [(102.0, 1.0)], [(103.0, 1.0)])) == 1
    world.state.add_market(market("b", fee="0.05"))  # fees went up: no edge left
    assert world.book("b", [(102.0, 1.0)], [(103.0, 1.0)]) == []


def test_symbols_allowlist_and_books() -> None:
    markets = {
        (m.venue, m.symbol): m
        for m in [
            market("a"),
            market("b"),
            market("a", symbol="ETH/USDT"),
            market("b", symbol="ETH/USDT"),
            market("a", symbol="SOL/USDT"),
        ]
    }
    assert list(strategy().books(markets)) == [
        ("a", "BTC/USDT"),
        ("b", "BTC/USDT"),
        ("a", "ETH/USDT"),
        ("b", "ETH/USDT"),
    ]
    only = strategy(symbols=["ETH/USDT"])
    assert list(only.books(markets)) == [("a", "ETH/USDT"), ("b", "ETH/USDT")]
    world = World([market("a"), market("b")], rich("a", "b"), only)
    world.book("a", [(99.0, 1.0)], [(100.0, 1.0)])
    assert world.book("b", [(102.0, 1.0)], [(103.0, 1.0)]) == []


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"min_edge_bps": -1}, "min_edge_bps"),
        ({"min_edge_bps": "nan"}, "min_edge_bps"),
        ({"min_profit_quote": -0.1}, "min_profit_quote"),
        ({"max_notional_quote": 0}, "max_notional_quote"),
        ({"max_inventory_skew": 0.3}, "max_inventory_skew"),
        ({"max_inventory_skew": 1.5}, "max_inventory_skew"),
        ({"symbols": ["BTC/USDT", "BTC/USDT"]}, "symbols"),
        ({"symbols": [" "]}, "symbols"),
        ({"min_edgebps": 5}, "min_edgebps"),
    ],
)
def test_params_errors_name_the_field(raw: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError, match=rf"strategy\.params\.{field}\b"):
        CrossExchange.from_params(raw)


def test_params_fields_are_documented() -> None:
    for name, info in CrossExchangeParams.model_fields.items():
        assert info.description, name
