"""The portfolio: balances from fills and from the exchange, and the inventory drift report."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arbot.engine.portfolio import Portfolio, Transfer
from arbot.model import Balance, Fill, Market, Side
from arbot.sim.server import SimServer
from arbot.strategy.context import MarketState
from arbot.testing import sim_venue_config
from arbot.venues.ccxt_venue import CcxtVenue

D = Decimal


def btc(venue: str) -> Market:
    return Market(venue, "BTC/USDT", "BTC", "USDT", D("0.01"), D("0.00001"), taker_fee=D("0.001"))


def fill(
    venue: str,
    side: Side,
    amount: str,
    price: str,
    fee: str = "0",
    fee_currency: str = "USDT",
    trade_id: str = "t1",
) -> Fill:
    return Fill(
        venue, "BTC/USDT", side, D(amount), D(price), D(fee), fee_currency, 0, "c1", trade_id
    )


def start(**holdings: tuple[str, str]) -> tuple[MarketState, Portfolio]:
    state = MarketState([btc("a"), btc("b")])
    portfolio = Portfolio(
        state,
        [Balance(v, asset, D(x)) for v, pairs in holdings.items() for asset, x in [pairs]],
    )
    return state, portfolio


def test_a_buy_adds_base_and_spends_quote_and_fee_and_writes_through() -> None:
    state = MarketState([btc("a")])
    portfolio = Portfolio(state, [Balance("a", "USDT", D(1000)), Balance("a", "BTC", D(0))])
    assert portfolio.apply_fill(fill("a", Side.BUY, "0.01", "60000", "0.6"), btc("a"))
    assert portfolio.balance("a", "BTC").free == D("0.01")
    assert portfolio.balance("a", "USDT").free == D("399.4")
    assert state.context().balance("a", "USDT") == D("399.4")  # what risk and strategies read


def test_a_fee_in_base_or_a_third_asset_comes_off_that_asset() -> None:
    state = MarketState([btc("a")])
    portfolio = Portfolio(state, [Balance("a", "USDT", D(1000)), Balance("a", "BNB", D(1))])
    portfolio.apply_fill(fill("a", Side.BUY, "0.01", "60000", "0.00001", "BTC"), btc("a"))
    assert portfolio.balance("a", "BTC").free == D("0.00999")
    assert portfolio.balance("a", "USDT").free == D(400)
    portfolio.apply_fill(fill("a", Side.SELL, "0.005", "60000", "0.01", "BNB", "t2"), btc("a"))
    assert portfolio.balance("a", "BTC").free == D("0.00499")
    assert portfolio.balance("a", "USDT").free == D(700)
    assert portfolio.balance("a", "BNB").free == D("0.99")


def test_the_same_trade_is_applied_once() -> None:
    _, portfolio = start(a=("USDT", "1000"))
    assert portfolio.apply_fill(fill("a", Side.BUY, "0.01", "60000"), btc("a"))
    assert not portfolio.apply_fill(fill("a", Side.BUY, "0.01", "60000"), btc("a"))
    assert portfolio.balance("a", "USDT").free == D(400)


def test_refresh_takes_the_exchange_as_truth_and_reports_the_drift(
    caplog: pytest.LogCaptureFixture,
) -> None:
    state, portfolio = start(a=("USDT", "1000"))
    portfolio.apply_fill(fill("a", Side.BUY, "0.01", "60000", "0.6"), btc("a"))
    drifts = portfolio.refresh(
        "a",
        {"USDT": Balance("a", "USDT", D("399.4")), "BTC": Balance("a", "BTC", D("0.0099"))},
    )
    assert [(d.asset, d.expected, d.exchange, d.difference) for d in drifts] == [
        ("BTC", D("0.01"), D("0.0099"), D("-0.0001"))
    ]
    assert state.balances[("a", "BTC")] == D("0.0099")
    # an asset the exchange no longer lists is gone
    drifts = portfolio.refresh("a", {"BTC": Balance("a", "BTC", D("0.0099"), D("0.0001"))})
    assert [(d.asset, d.exchange) for d in drifts] == [("BTC", D("0.01")), ("USDT", D(0))]
    assert portfolio.balance("a", "USDT").total == 0
    assert portfolio.balance("a", "BTC").used == D("0.0001")


# ----- properties of fill accounting ------------------------------------------------------

amounts = st.integers(1, 10**7).map(lambda n: D(n) * D("0.00001"))
prices = st.integers(1, 10**7).map(lambda n: D(n) * D("0.01"))
fee_amounts = st.integers(0, 10**6).map(lambda n: D(n) * D("0.000001"))
fills = st.lists(
    st.tuples(
        st.sampled_from(["a", "b"]),
        st.sampled_from([Side.BUY, Side.SELL]),
        amounts,
        prices,
        fee_amounts,
        st.sampled_from(["USDT", "BTC", "BNB"]),
    ),
    max_size=12,
)


def _snapshot(portfolio: Portfolio) -> dict[tuple[str, str], Decimal]:
    return {(b.venue, b.asset): b.free for b in portfolio.balances if b.free != 0}


@settings(max_examples=200, deadline=None)
@given(fills)
def test_fills_then_their_exact_reverse_return_to_the_start(
    trades: list[tuple[str, Side, Decimal, Decimal, Decimal, str]],
) -> None:
    state = MarketState([btc("a"), btc("b")])
    portfolio = Portfolio(state, [Balance("a", "USDT", D(10**6)), Balance("b", "BTC", D(5))])
    before = _snapshot(portfolio)
    applied = []
    for i, (venue, side, amount, price, fee, currency) in enumerate(trades):
        f = Fill(venue, "BTC/USDT", side, amount, price, fee, currency, 0, "c", f"t{i}")
        portfolio.apply_fill(f, btc(venue))
        applied.append(f)
    for i, f in enumerate(reversed(applied)):
        undo = replace(f, side=f.side.opposite, fee=-f.fee, trade_id=f"r{i}")
        portfolio.apply_fill(undo, btc(f.venue))
    assert _snapshot(portfolio) == before
    assert {k: v for k, v in state.balances.items() if v != 0} == before


@settings(max_examples=200, deadline=None)
@given(amounts, prices, fee_amounts, fee_amounts)
def test_a_cross_venue_round_trip_conserves_totals_minus_fees(
    amount: Decimal, price: Decimal, fee_a: Decimal, fee_b: Decimal
) -> None:
    _, portfolio = start(a=("USDT", "1000000000"), b=("BTC", "100"))
    usdt, btc_total = portfolio.total("USDT"), portfolio.total("BTC")
    portfolio.apply_fill(fill("a", Side.BUY, str(amount), str(price), str(fee_a)), btc("a"))
    portfolio.apply_fill(
        fill("b", Side.SELL, str(amount), str(price), str(fee_b), trade_id="t2"), btc("b")
    )
    assert portfolio.total("BTC") == btc_total
    assert portfolio.total("USDT") == usdt - fee_a - fee_b
    # inventory moved: a holds the bought base, b the sold quote
    assert portfolio.balance("a", "BTC").free == amount
    assert portfolio.balance("b", "BTC").free == D(100) - amount


# ----- drift report -----------------------------------------------------------------------


def test_drift_report_defaults_to_an_equal_split_including_drained_venues() -> None:
    state = MarketState([btc("a"), btc("b"), btc("c")])
    portfolio = Portfolio(
        state,
        [
            Balance("a", "BTC", D(3)),
            Balance("b", "BTC", D(0)),
            Balance("a", "USDT", D(100)),
            Balance("b", "USDT", D(100)),
            Balance("c", "USDT", D(100)),
        ],
    )
    report = portfolio.drift_report()
    by_asset = {a.asset: a for a in report.assets}
    btc_drift = by_asset["BTC"]
    assert btc_drift.total == 3
    assert [(v.venue, v.amount, v.share) for v in btc_drift.venues] == [
        ("a", D(3), D(1)),
        ("b", D(0), D(0)),
        ("c", D(0), D(0)),  # lists BTC/USDT, holds none: still part of the split
    ]
    assert sorted(btc_drift.transfers, key=lambda t: t.to_venue) == [
        Transfer("BTC", "a", "b", D(1)),
        Transfer("BTC", "a", "c", D(1)),
    ]
    assert by_asset["USDT"].transfers == ()  # already balanced
    assert by_asset["USDT"].max_deviation == 0


def test_drift_report_follows_explicit_targets_and_a_threshold() -> None:
    state = MarketState([btc("a"), btc("b")])
    portfolio = Portfolio(state, [Balance("a", "USDT", D(700)), Balance("b", "USDT", D(300))])
    report = portfolio.drift_report({"USDT": {"a": D(3), "b": D(1)}})  # 75 % / 25 %
    (usdt,) = [a for a in report.assets if a.asset == "USDT"]
    assert [(v.venue, v.target_share, v.deviation) for v in usdt.venues] == [
        ("a", D("0.75"), D("-0.05")),
        ("b", D("0.25"), D("0.05")),
    ]
    assert usdt.transfers == (Transfer("USDT", "b", "a", D(50)),)
    quiet = portfolio.drift_report({"USDT": {"a": D(3), "b": D(1)}}, min_deviation=D("0.06"))
    assert [a.transfers for a in quiet.assets if a.asset == "USDT"] == [()]
    assert report.to_dict()["assets"][1]["transfers"] == [
        {"asset": "USDT", "from": "b", "to": "a", "amount": "50"}
    ]
    assert "never moves funds" in report.to_dict()["note"]


def test_drift_report_refuses_nonsense_targets() -> None:
    _, portfolio = start(a=("USDT", "1"))
    with pytest.raises(ValueError, match="must not be negative"):
        portfolio.drift_report({"USDT": {"a": D(-1), "b": D(2)}})
    with pytest.raises(ValueError, match="more than zero"):
        portfolio.drift_report({"USDT": {"a": D(0)}})


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 10**9), min_size=2, max_size=6))
def test_the_suggested_transfers_restore_the_target_split(holdings: list[int]) -> None:
    venues = [f"v{i}" for i in range(len(holdings))]
    state = MarketState([btc(v) for v in venues])
    portfolio = Portfolio(
        state, [Balance(v, "BTC", D(n) * D("0.001")) for v, n in zip(venues, holdings, strict=True)]
    )
    (drift,) = [a for a in portfolio.drift_report(min_deviation=D(0)).assets if a.asset == "BTC"]
    after = {v.venue: v.amount for v in drift.venues}
    for t in drift.transfers:
        assert t.amount > 0
        after[t.from_venue] -= t.amount
        after[t.to_venue] += t.amount
    assert len(drift.transfers) <= len(venues) - 1
    if drift.total:
        target = drift.total / len(venues)
        slack = len(venues) * D("1e-8")  # transfers are rounded down to 1e-8
        assert all(abs(x - target) <= slack for x in after.values()), (after, target)


# ----- against the simulator --------------------------------------------------------------


async def test_refresh_from_a_real_venue(frozen_sim: SimServer) -> None:
    venue = CcxtVenue("binance", sim_venue_config(frozen_sim, "binance"), None)
    try:
        state = MarketState()
        portfolio = Portfolio(state)
        drifts = await portfolio.refresh_venue(venue)
    finally:
        await venue.close()
    assert portfolio.balance("binance", "USDT").free == D(100000)
    assert state.balances[("binance", "BTC")] == D(2)
    assert drifts == []  # the first answer is the baseline
    portfolio.apply_fill(fill("binance", Side.BUY, "0.01", "60000"), btc("binance"))
    venue = CcxtVenue("binance", sim_venue_config(frozen_sim, "binance"), None)
    try:
        drifts = await portfolio.refresh_venue(venue)  # that fill never happened there
    finally:
        await venue.close()
    assert [(d.asset, d.difference) for d in drifts] == [("BTC", D("-0.01")), ("USDT", D(600))]
    assert portfolio.balance("binance", "USDT").free == D(100000)
