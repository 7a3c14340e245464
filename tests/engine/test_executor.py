"""The executor against the simulator, scripted with its fault API.

For every scenario: the journal equals the simulator's own order list (ids, venues,
symbols, sides, amounts, prices, statuses, filled), and the PnL stored equals the PnL
computed from the simulator's own trades (``sim_pnl``, written independently).
"""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

from execution_support import (
    FAST_RISK,
    Desk,
    cross_opportunity,
    journal_orders,
    open_desk,
    sim_base_net,
    sim_configs,
    sim_net,
    sim_orders,
    sim_pnl,
    sim_trades,
)
from loguru import logger

from arbot.config import RiskConfig
from arbot.engine._accounting import Execution, Outcome, summarise
from arbot.engine.executor import ExecutionResult
from arbot.model import Fill, Leg, Opportunity, Order, OrderStatus, Side, TimeInForce
from arbot.sim.server import SimServer

AMOUNT = Decimal("0.0016")


def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'arbot.db'}"


def prefix(desk: Desk) -> str:
    return f"arb{desk.journal.run_id:x}o"


def check_books(server: SimServer, desk: Desk, result: ExecutionResult) -> None:
    """Journal == simulator; stored PnL == the simulator's PnL; the result agrees."""
    assert journal_orders(desk.journal, desk.journal.run_id) == sim_orders(server, prefix(desk))
    ids = [o.client_order_id for o in result.orders]
    record = desk.journal.opportunity(result.opportunity_id)
    assert record.outcome == result.outcome.value
    assert record.realised_pnl_quote == sim_pnl(server, ids)
    assert result.realised_pnl_quote == record.realised_pnl_quote
    stored = sorted((f.venue, f.trade_id, f.amount, f.price, f.fee) for f in desk.journal.fills())
    simulated = sorted(
        (name, str(t.trade_id), t.amount, t.price, t.fee) for name, t in sim_trades(server, ids)
    )
    assert stored == simulated


def unwind_orders(result: ExecutionResult) -> list[Order]:
    return [o for o in result.orders if "u" in o.client_order_id.split("o", 1)[1]]


async def test_both_legs_fill(frozen_sim: SimServer, database_url: str) -> None:
    async with open_desk(sim_configs(frozen_sim), database_url) as desk:
        result = await desk.executor.execute(await cross_opportunity(desk, AMOUNT))
        check_books(frozen_sim, desk, result)
    assert result.outcome is Outcome.FILLED
    assert [o.status for o in result.orders] == [OrderStatus.FILLED, OrderStatus.FILLED]
    assert [o.client_order_id for o in result.orders] == [
        f"{prefix(desk)}{result.opportunity_id:x}l0",
        f"{prefix(desk)}{result.opportunity_id:x}l1",
    ]
    assert result.residual == {}
    assert result.realised_pnl_quote < 0  # a frozen book has no edge: spread and fees


async def test_a_rejected_leg_is_unwound_within_the_bound(
    frozen_sim: SimServer, tmp_path: Path
) -> None:
    async with open_desk(sim_configs(frozen_sim), db(tmp_path)) as desk:
        opportunity = await cross_opportunity(desk, AMOUNT)
        frozen_sim.venues["okx"].faults.update({"reject_orders": 1})
        result = await desk.executor.execute(opportunity)
        check_books(frozen_sim, desk, result)
    assert result.outcome is Outcome.UNWOUND
    entry_buy, entry_sell, *unwinds = result.orders
    assert entry_buy.status is OrderStatus.FILLED
    assert entry_sell.status is OrderStatus.REJECTED
    assert unwinds
    assert all(o.side is Side.SELL and o.time_in_force is TimeInForce.IOC for o in unwinds)
    assert entry_buy.average_price is not None
    bound = entry_buy.average_price * (1 - FAST_RISK.max_unwind_loss_bps / 10_000)
    unwind_fills = [
        f for f in result.fills if f.client_order_id in {o.client_order_id for o in unwinds}
    ]
    assert unwind_fills
    assert all(f.price >= bound for f in unwind_fills)
    assert sim_base_net(frozen_sim, [o.client_order_id for o in result.orders]) == 0
    assert result.residual == {}


async def test_a_partially_filled_leg_has_its_excess_unwound(
    frozen_sim: SimServer, tmp_path: Path
) -> None:
    async with open_desk(sim_configs(frozen_sim), db(tmp_path)) as desk:
        opportunity = await cross_opportunity(desk, AMOUNT)
        frozen_sim.venues["okx"].faults.update(
            {"partial_fill_orders": 1, "partial_fill_ratio": 0.5}
        )
        result = await desk.executor.execute(opportunity)
        check_books(frozen_sim, desk, result)
    assert result.outcome is Outcome.UNWOUND
    entry_buy, entry_sell, *unwinds = result.orders
    assert entry_buy.filled == AMOUNT
    assert entry_sell.filled == AMOUNT / 2
    assert sum(o.filled for o in unwinds) == AMOUNT / 2
    assert sim_base_net(frozen_sim, [o.client_order_id for o in result.orders]) == 0


async def test_an_unwind_that_keeps_failing_is_retried_then_the_residual_recorded(
    frozen_sim: SimServer, tmp_path: Path
) -> None:
    errors: list[str] = []
    sink = logger.add(lambda m: errors.append(str(m)), level="ERROR")
    pendings = 0

    def trace(point: str, order: Order | None) -> None:
        nonlocal pendings
        if point == "pending":
            pendings += 1
            if pendings == 2:  # the first unwind round is about to go: unwinds fill half
                for venue in frozen_sim.venues.values():
                    venue.faults.update({"partial_fill_orders": 10, "partial_fill_ratio": 0.5})

    try:
        async with open_desk(sim_configs(frozen_sim), db(tmp_path), trace=trace) as desk:
            opportunity = await cross_opportunity(desk, AMOUNT)
            frozen_sim.venues["okx"].faults.update({"reject_orders": 1})
            result = await desk.executor.execute(opportunity)
            check_books(frozen_sim, desk, result)
    finally:
        logger.remove(sink)
    assert result.outcome is Outcome.STRANDED
    unwinds = unwind_orders(result)
    assert len(unwinds) == FAST_RISK.unwind_attempts
    assert [o.filled for o in unwinds] == [Decimal("0.0008"), Decimal("0.0004"), Decimal("0.0002")]
    assert result.residual == {("binance", "BTC"): Decimal("0.0002")}
    assert sim_base_net(frozen_sim, [o.client_order_id for o in result.orders]) == Decimal("0.0002")
    assert result.residual_quote > 0
    assert any("STRANDED" in e and "0.0002 BTC on binance" in e for e in errors)


async def test_the_loss_bound_is_never_crossed(frozen_sim: SimServer, tmp_path: Path) -> None:
    risk = RiskConfig(
        order_timeout_s=2.0, unwind_attempts=2, unwind_backoff_ms=5.0, max_unwind_loss_bps=0
    )
    async with open_desk(sim_configs(frozen_sim), db(tmp_path), risk=risk) as desk:
        opportunity = await cross_opportunity(desk, AMOUNT)
        frozen_sim.venues["okx"].faults.update({"reject_orders": 1})
        result = await desk.executor.execute(opportunity)
        check_books(frozen_sim, desk, result)
    assert result.outcome is Outcome.STRANDED
    entry = result.orders[0]
    unwinds = unwind_orders(result)
    assert len(unwinds) == 2
    # a sell no lower than the entry price: the bids are all below it, nothing fills
    assert entry.average_price is not None
    assert all(o.price is not None and o.price >= entry.average_price for o in unwinds)
    assert all(o.filled == 0 for o in unwinds)
    assert result.residual == {("binance", "BTC"): AMOUNT}


async def test_a_stalled_venue_is_recovered_by_polling_never_by_resending(
    frozen_sim: SimServer, tmp_path: Path
) -> None:
    risk = RiskConfig(order_timeout_s=0.2, unwind_attempts=2, unwind_backoff_ms=5.0)
    async with open_desk(sim_configs(frozen_sim), db(tmp_path), risk=risk, recovery_s=5.0) as desk:
        opportunity = await cross_opportunity(desk, AMOUNT)
        frozen_sim.venues["okx"].faults.update({"rest_stall_s": 0.5})
        try:
            result = await desk.executor.execute(opportunity)
        finally:
            frozen_sim.venues["okx"].faults.clear()
        check_books(frozen_sim, desk, result)
    assert result.outcome is Outcome.FILLED
    assert [o.status for o in result.orders] == [OrderStatus.FILLED, OrderStatus.FILLED]
    assert len(frozen_sim.venues["okx"].orders) == 1  # answered late, found, never resent


async def test_clock_skew_is_recovered_by_time_sync(frozen_sim: SimServer, tmp_path: Path) -> None:
    async with open_desk(sim_configs(frozen_sim), db(tmp_path)) as desk:
        opportunity = await cross_opportunity(desk, AMOUNT)
        for venue in frozen_sim.venues.values():
            venue.faults.update({"clock_skew_ms": 60_000})
        result = await desk.executor.execute(opportunity)
        check_books(frozen_sim, desk, result)
        assert all(v.rest.stats.time_syncs == 1 for v in desk.venues.values())
    assert result.outcome is Outcome.FILLED
    assert len(frozen_sim.venues["binance"].orders) == 1
    assert len(frozen_sim.venues["okx"].orders) == 1


async def test_fok_legs_fill_completely_or_not_at_all(
    frozen_sim: SimServer, tmp_path: Path
) -> None:
    risk = RiskConfig(order_timeout_s=2.0, unwind_backoff_ms=5.0, use_fok=True)
    async with open_desk(sim_configs(frozen_sim), db(tmp_path), risk=risk) as desk:
        opportunity = await cross_opportunity(desk, AMOUNT)
        frozen_sim.venues["okx"].faults.update(
            {"partial_fill_orders": 1, "partial_fill_ratio": 0.5}
        )
        result = await desk.executor.execute(opportunity)
        check_books(frozen_sim, desk, result)
    entry_buy, entry_sell, *_ = result.orders
    assert entry_buy.time_in_force is TimeInForce.FOK
    assert entry_sell.filled == 0  # half was available to it: FOK takes none
    assert result.outcome is Outcome.UNWOUND


# ----- accounting, by hand ---------------------------------------------------------------


def fill(cid: str, symbol: str, side: Side, amount: str, price: str, fee: str, cur: str) -> Fill:
    return Fill("v", symbol, side, Decimal(amount), Decimal(price), Decimal(fee), cur, 0, cid, cid)


def test_pnl_of_a_triangle_counts_fees_in_quote_through_its_own_prices() -> None:
    fills = [
        fill("a", "BTC/USDT", Side.BUY, "0.01", "60000", "0.00001", "BTC"),
        fill("b", "ETH/BTC", Side.BUY, "0.2", "0.05", "0.0002", "ETH"),
        fill("c", "ETH/USDT", Side.SELL, "0.2", "3010", "0.602", "USDT"),
    ]
    summary = summarise(fills, "USDT")
    # quote: -600 + 602 = 2; fees: 0.00001 BTC at 60000 = 0.6, 0.0002 ETH at the ETH price
    # derived from the execution's own fills (ETH/USDT 3010) = 0.602, 0.602 USDT
    assert summary.realised_pnl_quote == Decimal(2) - Decimal("0.6") - Decimal("0.602") - Decimal(
        "0.602"
    )
    assert summary.outcome is Outcome.FILLED
    assert summary.residual == {}


def test_a_fee_in_a_currency_without_a_price_is_left_out_and_reported() -> None:
    fills = [
        fill("a", "BTC/USDT", Side.BUY, "0.01", "60000", "0.1", "BNB"),
        fill("b", "BTC/USDT", Side.SELL, "0.01", "60010", "0.6001", "USDT"),
    ]
    summary = summarise(fills, "USDT")
    assert summary.realised_pnl_quote == Decimal("0.1") - Decimal("0.6001")
    assert summary.fees_excluded == {"BNB": Decimal("0.1")}


def test_a_residual_is_carried_at_cost_and_attributed_to_its_venue() -> None:
    fills = [
        Fill(
            "x",
            "BTC/USDT",
            Side.BUY,
            Decimal("0.01"),
            Decimal("60000"),
            Decimal(0),
            "BTC",
            0,
            "a",
            "1",
        ),
        Fill(
            "y",
            "BTC/USDT",
            Side.SELL,
            Decimal("0.004"),
            Decimal("60100"),
            Decimal(0),
            "USDT",
            0,
            "b",
            "2",
        ),
    ]
    summary = summarise(fills, "USDT")
    assert summary.outcome is Outcome.STRANDED
    assert summary.residual == {("x", "BTC"): Decimal("0.006")}
    assert summary.realised_pnl_quote == Decimal("0.4")  # 0.004 * 100, the closed part
    unwound = summarise(
        fills,
        "USDT",
        extra=[Execution("y", "BTC/USDT", Side.SELL, Decimal("0.006"), Decimal("60000"), True)],
    )
    assert unwound.outcome is Outcome.UNWOUND
    assert summarise([], "USDT").outcome is Outcome.FAILED


async def test_a_triangle_with_a_refused_middle_leg_is_unwound_leg_by_leg(
    frozen_sim: SimServer, tmp_path: Path
) -> None:
    """Three legs, two assets to put back: the BTC bought and the ETH sold."""
    async with open_desk(sim_configs(frozen_sim), db(tmp_path)) as desk:
        books = {
            s: await desk.venues[v].fetch_order_book(s, 5)
            for v, s in (("binance", "BTC/USDT"), ("okx", "ETH/BTC"), ("binance", "ETH/USDT"))
        }

        def through(symbol: str, side: Side) -> Decimal:
            book = books[symbol]
            top = book.best_ask if side is Side.BUY else book.best_bid
            assert top is not None
            market = desk.markets[("binance", symbol)]
            factor = Decimal("1.001") if side is Side.BUY else Decimal("0.999")
            return market.round_limit_price(Decimal(repr(top)) * factor, side)

        opportunity = Opportunity(
            strategy="triangular",
            legs=(
                Leg(
                    "binance", "BTC/USDT", Side.BUY, Decimal("0.002"), through("BTC/USDT", Side.BUY)
                ),
                Leg("okx", "ETH/BTC", Side.BUY, Decimal("0.04"), through("ETH/BTC", Side.BUY)),
                Leg(
                    "binance",
                    "ETH/USDT",
                    Side.SELL,
                    Decimal("0.04"),
                    through("ETH/USDT", Side.SELL),
                ),
            ),
            edge_quote=Decimal(0),
            edge_bps=Decimal(0),
            quote="USDT",
            created_ns=time.time_ns(),
        )
        frozen_sim.venues["okx"].faults.update({"reject_orders": 1})
        result = await desk.executor.execute(opportunity)
        check_books(frozen_sim, desk, result)
    assert result.outcome is Outcome.UNWOUND
    assert [o.status for o in result.orders[:3]] == [
        OrderStatus.FILLED,
        OrderStatus.REJECTED,
        OrderStatus.FILLED,
    ]
    unwinds = unwind_orders(result)
    assert sorted((o.symbol, o.side) for o in unwinds) == [
        ("BTC/USDT", Side.SELL),
        ("ETH/USDT", Side.BUY),
    ]
    net = sim_net(frozen_sim, [o.client_order_id for o in result.orders])
    assert net == {"BTC": 0, "ETH": 0}
