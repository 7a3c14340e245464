"""The triangular strategy: exact detection, incremental evaluation, sizing and valid legs.

The property test compares the strategy with a brute force written here independently:
every directed 3-cycle over every market, rotated to start at the first start asset it
passes through, evaluated with exact Fraction maths at the top of book. *Profitable*
means, in both, that the product of the top-of-book rates after taker fees
(``(1 - fee) / ask`` for a buy, ``bid * (1 - fee)`` for a sell) is at least
``1 + min_edge_bps / 10_000``. The strategy also drops a cycle whose sized legs are not
valid or whose edge after lot rounding is not positive; the generated universes (lot
step 1e-8, no minimums, level sizes >= 1, ample balances, min_edge_bps >= 1) make that
impossible for a profitable cycle, so the two sets must be equal.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arbot.errors import ConfigError
from arbot.feeds.book_feed import BookUpdate
from arbot.model import Balance, Level, Market, Opportunity, Side, to_decimal
from arbot.strategy.context import MarketState, StrategyContext
from strategies.triangular import Triangular

V = "v"
NOW = 10**18

D = Decimal


def market(
    symbol: str, tick: str = "1e-8", step: str = "1e-8", fee: str = "0.001", **extra: Any
) -> Market:
    base, quote = symbol.split("/")
    return Market(V, symbol, base, quote, D(tick), D(step), taker_fee=D(fee), **extra)


def book(symbol: str, bids: list[Level], asks: list[Level], received_ns: int = NOW) -> BookUpdate:
    return BookUpdate(V, symbol, bids, asks, 1, received_ns, None)


class Harness:
    """A MarketState, its context and a started strategy; ``send`` applies and evaluates."""

    def __init__(
        self,
        markets: Sequence[Market],
        balances: dict[str, Decimal],
        clock: Callable[[], int] = lambda: NOW,
        **params: Any,
    ) -> None:
        self.state = MarketState(
            markets, balances=[Balance(V, a, amount) for a, amount in balances.items()], clock=clock
        )
        self.ctx: StrategyContext = self.state.context()
        strategy = Triangular.from_params(params)
        assert isinstance(strategy, Triangular)
        self.strategy = strategy
        self.strategy.on_start(self.ctx)

    def send(self, update: BookUpdate) -> list[Opportunity]:
        self.state.apply(update)
        return self.strategy.on_book(update, self.ctx)


def route(opportunity: Opportunity) -> tuple[tuple[str, Side], ...]:
    return tuple((leg.symbol, leg.side) for leg in opportunity.legs)


# -- the hand-computed example: USDT -> BTC -> ETH -> USDT ---------------------------------

HAND_MARKETS = [
    market("BTC/USDT", tick="0.01", step="0.0001"),
    market("ETH/BTC", tick="0.00001", step="0.001"),
    market("ETH/USDT", tick="0.01", step="0.0001"),
]
HAND_BOOKS = [
    book("BTC/USDT", [(49_990.0, 1.0)], [(50_000.0, 0.1), (50_010.0, 1.0)]),
    book("ETH/BTC", [(0.0499, 5.0)], [(0.05, 1.0), (0.052, 10.0)]),
    book("ETH/USDT", [(2550.0, 1.0), (2540.0, 5.0)], [(2560.0, 1.0)]),
]
HAND_ROUTE = (("BTC/USDT", Side.BUY), ("ETH/BTC", Side.BUY), ("ETH/USDT", Side.SELL))


def hand(
    markets: Sequence[Market] = HAND_MARKETS,
    balances: dict[str, Decimal] | None = None,
    **params: Any,
) -> list[Opportunity]:
    params.setdefault("start_assets", ["USDT"])
    harness = Harness(markets, balances or {"USDT": D(10_000)}, **params)
    found = [harness.send(update) for update in HAND_BOOKS]
    assert found[0] == found[1] == []  # no cycle is complete before the third book
    return found[2]


def test_hand_computed_cycle() -> None:
    """Top rate 2550 / (50000 * 0.05) = 1.02 before fees, 1.02 * 0.999**3 after.

    Sizing: the first ETH/BTC level (1 ETH for 0.05 BTC) binds at 0.05 / (0.999 / 50000)
    = 2502.5025 USDT; the next level (0.052) would lose money. Rounding along the cycle:
    0.05005005 BTC -> 0.0500 (cost 2500), 0.04995 BTC buys 0.999 ETH, 0.998001 ETH
    sells as 0.9980 for 2544.9 * 0.999 = 2542.3551 USDT: edge 42.3551 USDT, 169.4204 bps.
    """
    [opportunity] = hand()
    assert route(opportunity) == HAND_ROUTE
    assert [leg.amount for leg in opportunity.legs] == [D("0.05"), D("0.999"), D("0.998")]
    assert [leg.limit_price for leg in opportunity.legs] == [D(50_000), D("0.05"), D(2550)]
    assert opportunity.quote == "USDT"
    assert opportunity.edge_quote == D("42.3551")
    assert opportunity.edge_bps == D("169.4204")
    assert opportunity.strategy == "triangular"
    assert opportunity.created_ns == NOW
    assert [stamp.symbol for stamp in opportunity.books] == [s for s, _ in HAND_ROUTE]
    assert all(stamp.received_ns == NOW and stamp.venue == V for stamp in opportunity.books)


def test_fees_reduce_and_then_kill_the_edge() -> None:
    [with_fees] = hand()
    [free] = hand(fee_override="0")
    assert free.edge_bps > with_fees.edge_bps
    # 1.02 * (1 - 0.0065)**3 = 1.00026...: 2.6 bps left, below a 5 bps minimum
    assert hand(fee_override="0.0065", min_edge_bps=5) == []
    # 2.4 bps pass a 2 bps minimum at the top of book, but the ETH/BTC lot step (0.001
    # ETH) leaves 0.0005 ETH of dust, about 5 bps: the edge after rounding is negative
    assert hand(fee_override="0.0065", min_edge_bps=2) == []
    fine = [dataclasses.replace(m, amount_step=D("1e-8")) for m in HAND_MARKETS]
    [thin] = hand(fine, fee_override="0.0065", min_edge_bps=2)
    assert D(2) < thin.edge_bps < D("2.4")
    assert hand([dataclasses.replace(m, taker_fee=D("0.007")) for m in HAND_MARKETS]) == []


def test_balance_and_max_notional_cap_the_start_amount() -> None:
    harness = Harness(HAND_MARKETS, {"USDT": D(1000)}, start_assets=["USDT"])
    [opportunity] = [found for u in HAND_BOOKS for found in harness.send(u)]
    assert opportunity.legs[0].amount == D("0.02")  # 1000 USDT / 50000
    capped = Harness(
        HAND_MARKETS, {"USDT": D(1000)}, start_assets=["USDT"], max_notional={"USDT": "600"}
    )
    [opportunity] = [found for u in HAND_BOOKS for found in capped.send(u)]
    assert opportunity.legs[0].amount == D("0.012")
    broke = Harness(HAND_MARKETS, {"USDT": D(0), "BTC": D(1)}, start_assets=["USDT"])
    assert [found for u in HAND_BOOKS for found in broke.send(u)] == []


def test_min_notional_and_stale_books_drop_the_cycle() -> None:
    strict = [*HAND_MARKETS[:2], market("ETH/USDT", "0.01", "0.0001", min_notional=D(3000))]
    assert hand(strict) == []
    later = NOW + 2 * 10**9  # the books are two seconds old; 1 s is the limit
    harness = Harness(HAND_MARKETS, {"USDT": D(10_000)}, clock=lambda: later)
    assert [found for u in HAND_BOOKS for found in harness.send(u)] == []


def test_the_threshold_is_exact() -> None:
    """The float 1.0001 is 1.00009999999999998899...: below a 1 bps threshold, exactly."""
    markets = [market("BTC/USDT", fee="0"), market("ETH/BTC", fee="0"), market("ETH/USDT", fee="0")]

    def found(bid: float) -> list[Opportunity]:
        harness = Harness(markets, {"USDT": D(100)}, start_assets=["USDT"], min_edge_bps=1)
        harness.send(book("BTC/USDT", [(0.5, 100.0)], [(1.0, 100.0)]))
        harness.send(book("ETH/BTC", [(0.5, 100.0)], [(1.0, 100.0)]))
        return harness.send(book("ETH/USDT", [(bid, 100.0)], [(2.0, 100.0)]))

    assert float(1 + Fraction(1, 10_000)) <= 1.0001  # what a float test would accept
    assert found(1.0001) == []
    [just] = found(math.nextafter(1.0001, 2.0))
    assert just.edge_quote == D(100) * to_decimal(math.nextafter(1.0001, 2.0)) - 100


def test_a_cycle_through_several_start_assets_starts_at_the_first_listed() -> None:
    [from_btc] = hand(balances={"BTC": D(1)}, start_assets=["BTC", "USDT"])
    assert from_btc.quote == "BTC"
    assert route(from_btc) == (HAND_ROUTE[1], HAND_ROUTE[2], HAND_ROUTE[0])
    assert from_btc.edge_quote > 0


def test_default_start_assets_are_the_held_assets() -> None:
    harness = Harness(HAND_MARKETS, {"ETH": D(2)})
    [opportunity] = [found for u in HAND_BOOKS for found in harness.send(u)]
    assert opportunity.quote == "ETH"
    assert route(opportunity) == (HAND_ROUTE[2], HAND_ROUTE[0], HAND_ROUTE[1])


# -- incremental evaluation ---------------------------------------------------------------

OTHER_MARKETS = [market("SOL/USDT"), market("SOL/BNB"), market("BNB/USDT")]
OTHER_BOOKS = [  # a fair, unprofitable triangle sharing only USDT with the hand example
    book("SOL/USDT", [(99.9, 10.0)], [(100.1, 10.0)]),
    book("SOL/BNB", [(0.1665, 10.0)], [(0.1668, 10.0)]),
    book("BNB/USDT", [(599.8, 10.0)], [(600.2, 10.0)]),
]


def test_only_cycles_containing_the_updated_market_are_evaluated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    harness = Harness([*HAND_MARKETS, *OTHER_MARKETS], {"USDT": D(10_000)}, start_assets=["USDT"])
    evaluated: list[set[str]] = []
    original = Triangular._evaluate

    def spy(self: Triangular, index: Any, cid: int, ctx: StrategyContext, now: int) -> Any:
        evaluated.append({index.markets[d >> 1].symbol for d in index.cycles[cid]})
        return original(self, index, cid, ctx, now)

    monkeypatch.setattr(Triangular, "_evaluate", spy)
    for update in OTHER_BOOKS:
        assert harness.send(update) == []
    assert evaluated == []  # unprofitable at the top of book: no cycle reaches evaluation
    assert len(harness.send(HAND_BOOKS[0])) == 0
    assert len(harness.send(HAND_BOOKS[1])) == 0
    assert len(harness.send(HAND_BOOKS[2])) == 1
    assert evaluated == [{"BTC/USDT", "ETH/BTC", "ETH/USDT"}]
    # the hand cycle is still profitable, but an update elsewhere does not report it again
    assert harness.send(OTHER_BOOKS[0]) == []
    assert len(evaluated) == 1
    assert len(harness.send(HAND_BOOKS[0])) == 1
    assert all("BTC/USDT" in symbols for symbols in evaluated[1:])


def test_max_opportunities_keeps_the_best_top_of_book_rates() -> None:
    markets = [*HAND_MARKETS, market("SOL/BTC"), market("SOL/USDT")]
    sol = [  # USDT -> BTC -> SOL -> USDT: 101 / (50000 * 0.002) = 1.01 before fees
        book("SOL/BTC", [(0.0019, 10.0)], [(0.002, 10.0)]),
        book("SOL/USDT", [(101.0, 10.0)], [(102.0, 10.0)]),
    ]

    def touched(**params: Any) -> list[Opportunity]:
        harness = Harness(markets, {"USDT": D(10_000)}, start_assets=["USDT"], **params)
        for update in [*HAND_BOOKS, *sol]:
            harness.send(update)
        return harness.send(HAND_BOOKS[0])

    both = touched()
    assert [o.legs[1].symbol for o in both] == ["ETH/BTC", "SOL/BTC"]
    assert both[0].edge_bps > both[1].edge_bps
    assert touched(max_opportunities=1) == both[:1]


def test_books_lists_only_markets_in_a_cycle() -> None:
    markets = [*HAND_MARKETS, *OTHER_MARKETS, market("DOGE/USDT"), market("ADA/EUR")]
    state = MarketState(markets)
    chosen = Triangular.from_params({"start_assets": ["USDT"]}).books(state.markets)
    assert sorted(symbol for _, symbol in chosen) == sorted(
        m.symbol for m in [*HAND_MARKETS, *OTHER_MARKETS]
    )
    assert list(Triangular.from_params({"start_assets": ["EUR"]}).books(state.markets)) == []


def test_markets_added_or_changed_later_rebuild_the_index() -> None:
    harness = Harness(HAND_MARKETS[:2], {"USDT": D(10_000)}, start_assets=["USDT"])
    assert harness.strategy.cycle_count == 0
    for update in HAND_BOOKS[:2]:
        assert harness.send(update) == []
    harness.state.add_market(HAND_MARKETS[2])
    assert len(harness.send(HAND_BOOKS[2])) == 1
    assert harness.strategy.cycle_count == 2  # both directions of the triangle
    harness.state.add_market(dataclasses.replace(HAND_MARKETS[2], taker_fee=D("0.02")))
    assert harness.send(HAND_BOOKS[2]) == []


def test_four_cycles_need_max_cycle_length_4() -> None:
    markets = [market("A/USDT"), market("B/A"), market("C/B"), market("C/USDT")]
    books = [
        book("A/USDT", [(0.99, 100.0)], [(1.0, 100.0)]),
        book("B/A", [(0.99, 100.0)], [(1.0, 100.0)]),
        book("C/B", [(0.99, 100.0)], [(1.0, 100.0)]),
        book("C/USDT", [(1.01, 100.0)], [(1.02, 100.0)]),
    ]
    three = Harness(markets, {"USDT": D(1000)}, start_assets=["USDT"])
    assert [o for u in books for o in three.send(u)] == []
    four = Harness(markets, {"USDT": D(1000)}, start_assets=["USDT"], max_cycle_length=4)
    [opportunity] = [o for u in books for o in four.send(u)]
    assert route(opportunity) == (
        ("A/USDT", Side.BUY),
        ("B/A", Side.BUY),
        ("C/B", Side.BUY),
        ("C/USDT", Side.SELL),
    )
    # 100 USDT buy 100 A (the whole ladder); 99.9 A buy 99.9 B; 99.8001 B buy 99.8001 C;
    # 99.7002999 C sell at 1.01, less the fee
    assert [leg.amount for leg in opportunity.legs] == [
        100,
        D("99.9"),
        D("99.8001"),
        D("99.7002999"),
    ]
    assert opportunity.edge_quote == D("99.7002999") * D("1.01") * D("0.999") - 100


def test_params_are_checked() -> None:
    with pytest.raises(ConfigError, match="max_cycle_length"):
        Triangular.from_params({"max_cycle_length": 5})
    with pytest.raises(ConfigError, match="min_edge_bps"):
        Triangular.from_params({"min_edge_bps": -1})
    with pytest.raises(ConfigError, match="nonsense"):
        Triangular.from_params({"nonsense": 1})


# -- random universes ---------------------------------------------------------------------

ASSETS = ["USDT", "BTC", "ETH", "BNB", "SOL", "EUR"]
FEES = ["0", "0.0005", "0.001", "0.002", "-0.0001"]


@dataclasses.dataclass
class Universe:
    markets: list[Market]
    books: list[BookUpdate]
    start_assets: list[str]
    min_edge_bps: Decimal
    balances: dict[str, Decimal]
    max_notional: dict[str, Decimal]


def _ladder(draw: st.DrawFn, first: float, worse: float, places: int | None) -> list[Level]:
    levels: list[Level] = []
    price = first
    for _ in range(draw(st.integers(1, 3))):
        if places is not None:
            price = round(price, places)
        if price <= 0 or (levels and (price - levels[-1][0]) * worse <= 0):
            break
        levels.append((price, draw(st.floats(1.0, 100.0))))
        price *= 1 + worse * draw(st.floats(1e-4, 0.01))
    return levels


@st.composite
def universes(draw: st.DrawFn, grids: bool = False) -> Universe:
    """3-6 assets, random markets between them, books around hidden fair values.

    ``grids``: coarse random ticks and lot steps (level prices on the tick grid), minimum
    notionals, small balances and caps; otherwise a fine grid and ample balances.
    """
    assets = ASSETS[: draw(st.integers(3, 6))]
    fair = {a: draw(st.floats(0.5, 2.0)) for a in assets}
    markets: list[Market] = []
    books: list[BookUpdate] = []
    for x, y in itertools.combinations(assets, 2):
        if not draw(st.booleans()) and len(markets) >= 1:
            continue
        base, quote = (x, y) if draw(st.booleans()) else (y, x)
        symbol = f"{base}/{quote}"
        places = draw(st.sampled_from([2, 3, 5])) if grids else None
        tick = D(1).scaleb(-places) if places is not None else D("1e-8")
        step = D(draw(st.sampled_from(["0.1", "0.01", "0.001", "1e-6"]))) if grids else D("1e-8")
        min_notional = D(draw(st.sampled_from(["0", "0", "1", "5"]))) if grids else D(0)
        fee = D(draw(st.sampled_from(FEES)))
        markets.append(market(symbol, str(tick), str(step), str(fee), min_notional=min_notional))
        noise = 0.03 if grids else 0.01
        mid = fair[base] / fair[quote] * (1 + draw(st.floats(-noise, noise)))
        half = draw(st.floats(1e-5, 0.003))
        bids = _ladder(draw, mid * (1 - half), -1.0, places)
        asks = _ladder(draw, mid * (1 + half), 1.0, places)
        if bids and asks and bids[0][0] >= asks[0][0]:
            asks = [(round(bids[0][0] + float(tick), places or 8), 10.0)]
        books.append(book(symbol, bids, asks))
    order = draw(st.permutations(assets))
    starts = list(order[: draw(st.integers(1, len(assets)))])
    if grids:
        balances = {a: D(draw(st.integers(0, 100_000))) / 100 for a in starts}
        caps = {a: D(draw(st.integers(100, 50_000))) / 100 for a in starts if draw(st.booleans())}
    else:
        balances = {a: D(10**6) for a in starts}
        caps = {}
    edge = D(draw(st.integers(100, 5000))) / 100
    order_books = draw(st.permutations(books))
    return Universe(markets, list(order_books), starts, edge, balances, caps)


def top_rate(m: Market, update: BookUpdate, side: Side) -> Fraction:
    keep = 1 - Fraction(m.taker_fee)
    if side is Side.BUY:
        return keep / Fraction(update.asks[0][0])
    return Fraction(update.bids[0][0]) * keep


def brute_force(universe: Universe) -> set[tuple[tuple[str, Side], ...]]:
    """Every profitable directed 3-cycle, rotated to its first start asset."""
    latest = {u.symbol: u for u in universe.books}
    hops: dict[tuple[str, str], list[tuple[Market, Side]]] = {}
    for m in universe.markets:
        hops.setdefault((m.quote, m.base), []).append((m, Side.BUY))
        hops.setdefault((m.base, m.quote), []).append((m, Side.SELL))
    threshold = 1 + Fraction(universe.min_edge_bps) / 10_000
    assets = {m.base for m in universe.markets} | {m.quote for m in universe.markets}
    found = set()
    for a, b, c in itertools.permutations(sorted(assets), 3):
        starts = [s for s in universe.start_assets if s in (a, b, c)]
        if not starts or starts[0] != a:
            continue
        for route_ in itertools.product(
            hops.get((a, b), []), hops.get((b, c), []), hops.get((c, a), [])
        ):
            product = Fraction(1)
            for m, side in route_:
                update = latest[m.symbol]
                if not (update.asks if side is Side.BUY else update.bids):
                    product = Fraction(0)
                    break
                product *= top_rate(m, update, side)
            if product >= threshold:
                found.add(tuple((m.symbol, side) for m, side in route_))
    return found


def start(universe: Universe) -> Harness:
    return Harness(
        universe.markets,
        universe.balances,
        start_assets=universe.start_assets,
        min_edge_bps=universe.min_edge_bps,
        max_notional=universe.max_notional,
    )


@settings(max_examples=150, deadline=None)
@given(universes())
def test_finds_exactly_the_profitable_cycles_of_a_brute_force(universe: Universe) -> None:
    harness = start(universe)
    for update in universe.books:
        harness.send(update)
    expected = brute_force(universe)
    seen = set()
    for update in universe.books:  # each market once more: only its cycles come back
        found = harness.send(update)
        routes = [route(o) for o in found]
        assert len(set(routes)) == len(routes)
        touched = {r for r in expected if update.symbol in {symbol for symbol, _ in r}}
        assert set(routes) == touched
        assert [o.edge_bps for o in found] == sorted((o.edge_bps for o in found), reverse=True)
        seen |= set(routes)
    assert seen == expected


def exact_walk(levels: list[Level], amount: Decimal) -> tuple[Decimal, Decimal, Decimal]:
    """(filled, cost, worst price) with Decimal arithmetic, written for the test."""
    filled = cost = worst = D(0)
    for price_f, size_f in levels:
        if filled >= amount:
            break
        price, size = to_decimal(price_f), to_decimal(size_f)
        take = min(size, amount - filled)
        filled += take
        cost += take * price
        worst = price
    return filled, cost, worst


@settings(max_examples=200, deadline=None)
@given(universes(grids=True))
def test_sized_legs_are_valid_and_within_balances_and_depth(universe: Universe) -> None:
    harness = start(universe)
    markets = {m.symbol: m for m in universe.markets}
    threshold = 1 + Fraction(universe.min_edge_bps) / 10_000
    found = [o for update in universe.books * 2 for o in harness.send(update)]
    profitable = brute_force(universe)
    for opportunity in found:
        assert route(opportunity) in profitable
        start_asset = opportunity.quote
        budget = min(
            universe.balances[start_asset], universe.max_notional.get(start_asset, D(10**9))
        )
        worst_rates = Fraction(1)
        spent = D(0)
        for k, leg in enumerate(opportunity.legs):
            m = markets[leg.symbol]
            assert m.order_problem(leg.amount, leg.limit_price) is None
            levels = harness.ctx.book(V, leg.symbol).levels_for(leg.side)  # type: ignore[union-attr]
            filled, cost, worst = exact_walk(levels, leg.amount)
            assert filled == leg.amount  # never more than the book holds
            assert leg.limit_price == worst  # level prices are on the grid here
            keep = 1 - m.taker_fee
            if leg.side is Side.BUY:
                needed, delivered = cost, leg.amount * keep
                worst_rates *= (1 - Fraction(m.taker_fee)) / Fraction(worst)
            else:
                needed, delivered = leg.amount, cost * keep
                worst_rates *= Fraction(worst) * (1 - Fraction(m.taker_fee))
            assert needed <= budget  # the balance, the cap, then what the last leg delivered
            if k == 0:
                spent = needed
            budget = delivered
        assert opportunity.edge_quote == budget - spent > 0
        assert opportunity.edge_bps == opportunity.edge_quote / spent * 10_000
        # sizing keeps to a profitable marginal rate: even the worst levels touched are
        assert worst_rates >= threshold * (1 - Fraction(1, 10**9))
        assert [s.symbol for s in opportunity.books] == [leg.symbol for leg in opportunity.legs]
