"""arbot.testing's helpers for strategy authors: books, markets, the harness, the checks,
and a strategy run on live books from the simulator."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path

import pytest

from arbot.errors import ConfigError
from arbot.model import BookStamp, Fill, Leg, Market, Opportunity, Side, to_decimal
from arbot.sim.server import SimServer
from arbot.strategy import BookKey, BookUpdate, Strategy, StrategyContext, StrategyParams
from arbot.testing import (
    ManualClock,
    StrategyHarness,
    assert_valid_opportunity,
    book_update,
    load_plugin,
    market,
    opportunity_problems,
    run_on_simulator,
    run_strategy,
)

BTC_BINANCE = market("binance", "BTC/USDT")
BTC_OKX = market("okx", "BTC/USDT")
ETH_BINANCE = market("binance", "ETH/USDT", amount_step="0.0001")


class Recorder(Strategy):
    """Records every hook call; proposes nothing."""

    name = "recorder"

    def __init__(self, params: StrategyParams | None = None) -> None:
        super().__init__(params)
        self.calls: list[tuple[str, object]] = []

    def books(self, markets: Mapping[BookKey, Market]) -> Iterable[BookKey]:
        return [key for key in markets if key[1] == "BTC/USDT"]

    def on_start(self, ctx: StrategyContext) -> None:
        self.calls.append(("start", sorted(ctx.markets)))

    def on_book(self, update: BookUpdate, ctx: StrategyContext) -> list[Opportunity]:
        book = ctx.book(update.venue, update.symbol)
        assert book is not None
        self.calls.append(("book", (update.venue, book.best_bid, ctx.now_ns)))
        return []

    def on_fill(self, fill: Fill, ctx: StrategyContext) -> None:
        self.calls.append(("fill", fill.trade_id))


class Proposer(Strategy):
    """Proposes the legs it is given on every update (to test the checks)."""

    name = "proposer"

    def __init__(self, legs: tuple[Leg, ...], *, strategy: str = "proposer") -> None:
        super().__init__()
        self.legs = legs
        self.strategy_name = strategy

    def on_book(self, update: BookUpdate, ctx: StrategyContext) -> list[Opportunity]:
        if any(ctx.book(leg.venue, leg.symbol) is None for leg in self.legs):
            return []  # wait for every leg's book
        return [opportunity(self.legs, ctx, self.strategy_name)]


def opportunity(
    legs: tuple[Leg, ...], ctx: StrategyContext | None = None, strategy: str = "proposer"
) -> Opportunity:
    return Opportunity(
        strategy=strategy,
        legs=legs,
        edge_quote=Decimal("1.5"),
        edge_bps=Decimal("2.5"),
        quote="USDT",
        created_ns=ctx.now_ns if ctx is not None else 0,
    )


def leg(venue: str, side: Side, amount: str, price: str, symbol: str = "BTC/USDT") -> Leg:
    return Leg(venue, symbol, side, Decimal(amount), Decimal(price))


def btc(venue: str, bid: float, ask: float, received_ns: int = 0) -> BookUpdate:
    return book_update(
        venue, "BTC/USDT", bids=[(bid, 1.0)], asks=[(ask, 1.0)], received_ns=received_ns
    )


def context(
    markets: Iterable[Market], balances: Mapping[tuple[str, str], str], *updates: BookUpdate
) -> StrategyContext:
    harness = StrategyHarness(Recorder(), markets=markets, balances=balances)
    for update in updates:
        harness.state.apply(update)
    return harness.context


# -- building blocks ---------------------------------------------------------------------


def test_book_update_builds_float_levels_and_refuses_impossible_ladders() -> None:
    update = book_update(
        "binance", "BTC/USDT", bids=[(100, 1), (99.5, 2)], asks=[(101, "0.5")], received_ns=7
    )
    assert update.bids == [(100.0, 1.0), (99.5, 2.0)]
    assert update.asks == [(101.0, 0.5)]
    assert (update.venue, update.symbol, update.received_ns) == ("binance", "BTC/USDT", 7)
    assert isinstance(update, BookUpdate)
    with pytest.raises(ValueError, match="bids are not strictly descending at price 100"):
        book_update("binance", "BTC/USDT", bids=[(99, 1), (100, 1)])
    with pytest.raises(ValueError, match="crossed book"):
        book_update("binance", "BTC/USDT", bids=[(101, 1)], asks=[(100, 1)])
    crossed = book_update("binance", "BTC/USDT", bids=[(101, 1)], asks=[(100, 1)], check=False)
    assert crossed.bids == [(101.0, 1.0)]


def test_market_has_sensible_defaults_and_exact_numbers() -> None:
    m = market(
        "okx",
        "ETH/BTC",
        price_tick="0.00001",
        amount_step=0.0001,
        min_notional="0.0001",
        taker_fee=0.0008,
    )
    assert (m.venue, m.symbol, m.base, m.quote) == ("okx", "ETH/BTC", "ETH", "BTC")
    assert m.amount_step == Decimal("0.0001")
    assert m.min_amount == m.amount_step
    assert (m.taker_fee, m.min_notional) == (Decimal("0.0008"), Decimal("0.0001"))
    assert m.order_problem(Decimal("0.002"), Decimal("0.05")) is None
    assert market("binance").min_notional == Decimal(5)
    with pytest.raises(ValueError, match="expected BASE/QUOTE"):
        market("okx", "BTCUSDT")


def test_manual_clock_moves_only_when_told() -> None:
    clock = ManualClock(1_000)
    assert clock() == 1_000
    assert clock.advance(ms=2.5) == 2_501_000
    assert clock.advance(s=1, ns=5) == 1_002_501_005
    assert clock() == 1_002_501_005


# -- the harness -------------------------------------------------------------------------


def test_run_strategy_starts_once_feeds_wanted_books_and_replays_time() -> None:
    strategy = Recorder()
    run = run_strategy(
        strategy,
        [
            btc("binance", 100, 101, received_ns=10),
            book_update("binance", "ETH/USDT", bids=[(5, 1)], asks=[(6, 1)], received_ns=11),
            btc("okx", 102, 103, received_ns=12),
            btc("binance", 99, 100, received_ns=13),
        ],
        markets=[BTC_BINANCE, BTC_OKX, ETH_BINANCE],
    )
    assert strategy.calls == [
        ("start", [("binance", "BTC/USDT"), ("binance", "ETH/USDT"), ("okx", "BTC/USDT")]),
        ("book", ("binance", 100.0, 10)),
        ("book", ("okx", 102.0, 12)),
        ("book", ("binance", 99.0, 13)),
    ]
    assert (run.updates, run.skipped) == (3, 1)
    assert run.context.book("binance", "ETH/USDT") is None  # never streamed
    book = run.context.book("binance", "BTC/USDT")
    assert book is not None
    assert book.best_ask == 100.0
    run.fill(
        Fill(
            "binance",
            "BTC/USDT",
            Side.BUY,
            Decimal(1),
            Decimal(100),
            Decimal(0),
            "BTC",
            0,
            "c1",
            "t1",
        )
    )
    run.start()
    assert strategy.calls[-1] == ("fill", "t1")
    assert [call for call, _ in strategy.calls].count("start") == 1


def test_an_injected_clock_decides_staleness() -> None:
    clock = ManualClock(0)
    harness = StrategyHarness(Recorder(), markets=[BTC_BINANCE], clock=clock, max_book_age_ms=500)
    harness.feed(btc("binance", 100, 101, received_ns=0))
    assert not harness.context.is_stale("binance", "BTC/USDT")
    clock.advance(ms=501)
    assert harness.context.is_stale("binance", "BTC/USDT")
    assert harness.context.book_age_ms("binance", "BTC/USDT") == 501.0


def test_an_update_for_an_unknown_market_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"no market for okx BTC/USDT; pass markets="):
        run_strategy(Recorder(), [btc("okx", 1, 2)], markets=[BTC_BINANCE])


def test_valid_opportunities_are_collected_in_order() -> None:
    legs = (
        leg("binance", Side.BUY, "0.01", "100.01"),
        leg("okx", Side.SELL, "0.01", "100.50"),
    )
    strategy = Proposer(legs)
    run = run_strategy(
        strategy,
        [btc("binance", 100, 100.01), btc("okx", 100.5, 100.6)],
        markets=[market("binance", min_notional=1), market("okx", min_notional=1)],
        balances={("binance", "USDT"): "5", ("okx", "BTC"): "0.01"},
    )
    assert run.updates == 2
    [proposed] = run.opportunities
    assert proposed.legs == legs


def test_the_harness_rejects_an_invalid_opportunity_at_once() -> None:
    off_grid = (leg("binance", Side.BUY, "0.000015", "100.005"),)
    with pytest.raises(AssertionError) as error:
        run_strategy(
            Proposer(off_grid),
            [btc("binance", 100, 101)],
            markets=[BTC_BINANCE],
            balances={("binance", "USDT"): "1000"},
        )
    message = str(error.value)
    assert message.startswith("invalid opportunity from 'proposer': leg 0 (buy 0.000015")
    assert "not a multiple of the lot step" in message
    unchecked = run_strategy(
        Proposer(off_grid),
        [btc("binance", 100, 101)],
        markets=[BTC_BINANCE],
        check=False,
    )
    assert len(unchecked.opportunities) == 1


def test_the_harness_checks_the_strategy_name_and_the_return_type() -> None:
    legs = (leg("binance", Side.SELL, "0.1", "100"),)
    with pytest.raises(AssertionError, match="names strategy 'other', expected 'proposer'"):
        run_strategy(
            Proposer(legs, strategy="other"),
            [btc("binance", 100, 101)],
            markets=[BTC_BINANCE],
            balances={("binance", "BTC"): "1"},
        )

    class ReturnsNone(Recorder):
        name = "returns_none"

        def on_book(self, update: BookUpdate, ctx: StrategyContext) -> list[Opportunity]:
            return None  # type: ignore[return-value]

    with pytest.raises(TypeError, match=r"ReturnsNone\.on_book returned NoneType"):
        run_strategy(ReturnsNone(), [btc("binance", 100, 101)], markets=[BTC_BINANCE])


# -- the opportunity checks --------------------------------------------------------------


def test_a_valid_opportunity_has_no_problems() -> None:
    ctx = context(
        [BTC_BINANCE, BTC_OKX],
        {("binance", "USDT"): "1000.10", ("okx", "BTC"): "0.01"},
        btc("binance", 99, 100),
        btc("okx", 101, 102),
    )
    legs = (leg("binance", Side.BUY, "0.01", "100000"), leg("okx", Side.SELL, "0.01", "99000"))
    # 0.01 * 100000 = 1000 quote, plus the 10 bps taker fee = 1001 > 1000.10
    assert opportunity_problems(opportunity(legs), ctx) == [
        "needs 1001.00000 USDT on binance, only 1000.10 free"
    ]
    fits = (leg("binance", Side.BUY, "0.01", "99900"), leg("okx", Side.SELL, "0.01", "99000"))
    assert opportunity_problems(opportunity(fits), ctx) == []
    assert_valid_opportunity(opportunity(fits), ctx)


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        (
            leg("binance", Side.BUY, "0.01", "100.001"),
            "leg 0 (buy 0.01 BTC/USDT on binance): price 100.001 is not a multiple of the "
            "tick 0.01",
        ),
        (
            leg("binance", Side.BUY, "0.000011", "100"),
            "leg 0 (buy 0.000011 BTC/USDT on binance): amount 0.000011 is not a multiple of "
            "the lot step 0.00001",
        ),
        (
            leg("binance", Side.BUY, "0.01", "100"),
            "leg 0 (buy 0.01 BTC/USDT on binance): notional 1.00 is below the minimum 5",
        ),
        (
            leg("kraken", Side.BUY, "0.01", "100"),
            "leg 0 (buy 0.01 BTC/USDT on kraken): no market BTC/USDT on kraken",
        ),
        (
            leg("okx", Side.SELL, "2", "100"),
            "needs 2 BTC on okx, only 1 free",
        ),
    ],
    ids=["off-tick", "off-lot", "min-notional", "unknown-market", "balance"],
)
def test_each_kind_of_invalid_leg_is_named(bad: Leg, problem: str) -> None:
    ctx = context(
        [BTC_BINANCE, BTC_OKX],
        {("binance", "USDT"): "1000000", ("okx", "BTC"): "1"},
        btc("binance", 99, 100),
        btc("okx", 101, 102),
    )
    assert opportunity_problems(opportunity((bad,)), ctx) == [problem]
    with pytest.raises(AssertionError, match="invalid opportunity from 'proposer': "):
        assert_valid_opportunity(opportunity((bad,)), ctx)


def test_balances_are_checked_across_all_legs_together() -> None:
    ctx = context(
        [BTC_BINANCE, ETH_BINANCE],
        {("binance", "BTC"): "0.015"},
        btc("binance", 99000, 100000),
        book_update("binance", "ETH/USDT", bids=[(5, 1)], asks=[(6, 1)]),
    )
    each_fits = (
        leg("binance", Side.SELL, "0.01", "99000"),
        leg("binance", Side.SELL, "0.01", "99000"),
    )
    assert opportunity_problems(opportunity(each_fits), ctx) == [
        "needs 0.02 BTC on binance, only 0.015 free"
    ]


def test_stale_books_are_a_problem_unless_not_asked() -> None:
    clock = ManualClock(0)
    harness = StrategyHarness(
        Recorder(), markets=[BTC_BINANCE], balances={("binance", "BTC"): "1"}, clock=clock
    )
    sell = opportunity((leg("binance", Side.SELL, "0.001", "99000"),))
    assert opportunity_problems(sell, harness.context) == [
        "leg 0 (sell 0.001 BTC/USDT on binance): stale (no book, limit 1000 ms)"
    ]
    harness.feed(btc("binance", 99000, 100000, received_ns=0))
    assert opportunity_problems(sell, harness.context) == []
    clock.advance(ms=1500)
    assert opportunity_problems(sell, harness.context) == [
        "leg 0 (sell 0.001 BTC/USDT on binance): stale (book is 1500 ms old, limit 1000 ms)"
    ]
    assert opportunity_problems(sell, harness.context, check_stale=False) == []


def test_an_opportunity_without_legs_or_with_an_infinite_edge_is_invalid() -> None:
    ctx = context([BTC_BINANCE], {})
    empty = Opportunity("p", (), Decimal("Infinity"), Decimal(1), "USDT", 0)
    assert opportunity_problems(empty, ctx) == [
        "no legs",
        "edge must be finite (edge_quote Infinity, edge_bps 1)",
    ]


# -- plugins by path ---------------------------------------------------------------------


def test_load_plugin_returns_the_class_or_arbots_one_line_reason(tmp_path: Path) -> None:
    good = tmp_path / "edge.py"
    good.write_text(
        "from arbot.strategy import Strategy\n\n\n"
        "class Edge(Strategy):\n"
        '    name = "edge"\n\n'
        "    def on_book(self, update, ctx):\n"
        "        return []\n"
    )
    cls = load_plugin(good)
    assert (cls.__name__, cls.name) == ("Edge", "edge")
    bad = tmp_path / "bad.py"
    bad.write_text(good.read_text().replace('"edge"', '"Edge"'))
    with pytest.raises(ConfigError) as error:
        load_plugin(bad)
    assert str(error.value) == (
        f"{bad}: class Edge: name 'Edge' is not valid; use lowercase letters, digits and _, "
        "starting with a letter"
    )
    with pytest.raises(ConfigError, match="no strategy named 'other'"):
        load_plugin(good, "other")


# -- against the simulator ---------------------------------------------------------------


class BuyTheAsk(Strategy):
    """Proposes buying the minimum amount at the best ask of each update (a probe)."""

    name = "buy_the_ask"

    def books(self, markets: Mapping[BookKey, Market]) -> Iterable[BookKey]:
        return [key for key in markets if key[1] == "BTC/USDT"]

    def on_book(self, update: BookUpdate, ctx: StrategyContext) -> list[Opportunity]:
        info = ctx.market(update.venue, update.symbol)
        assert info is not None
        price = to_decimal(update.asks[0][0])
        amount = info.round_amount(info.min_notional / price) + info.amount_step
        return [
            Opportunity(
                self.name,
                (Leg(update.venue, update.symbol, Side.BUY, amount, price),),
                Decimal(0),
                Decimal(0),
                info.quote,
                ctx.now_ns,
                (BookStamp(update.venue, update.symbol, update.exchange_ms, update.received_ns),),
            )
        ]


async def test_run_on_simulator_streams_books_with_real_markets_and_balances(
    sim: SimServer,
) -> None:
    run = await run_on_simulator(BuyTheAsk(), sim, updates=12)
    assert run.updates == 12
    assert run.wanted == {("binance", "BTC/USDT"), ("okx", "BTC/USDT")}
    # Markets and balances come from the venues, as the simulator's config sets them.
    btc_binance = run.context.market("binance", "BTC/USDT")
    assert btc_binance is not None
    assert (btc_binance.price_tick, btc_binance.amount_step) == (
        Decimal("0.01"),
        Decimal("0.00001"),
    )
    assert btc_binance.taker_fee == Decimal("0.001")
    assert run.context.balance("okx", "USDT") == Decimal(100000)
    assert run.context.market("okx", "ETH/USDT") is not None
    # Every update was handed to the strategy, and every proposal passed the checks.
    assert len(run.opportunities) == 12
    for venue in ("binance", "okx"):
        book = run.context.book(venue, "BTC/USDT")
        assert book is not None
        assert book.bids
        assert book.asks
        assert book.bids[0][0] < book.asks[0][0]


async def test_run_on_simulator_says_when_updates_do_not_come(frozen_sim: SimServer) -> None:
    # Frozen books: each stream delivers its first snapshot and then nothing.
    with pytest.raises(TimeoutError, match=r"of 50 book updates arrived within 1\.0 s"):
        await run_on_simulator(BuyTheAsk(), frozen_sim, updates=50, timeout_s=1.0)


async def test_run_on_simulator_needs_a_bound(sim: SimServer) -> None:
    with pytest.raises(ValueError, match="pass updates=N, seconds=S, or both"):
        await run_on_simulator(BuyTheAsk(), sim)
