"""Reconciliation against the simulator: interrupted executions are settled from the
venues' own answers, never resent; unknown open orders are reported (and cancelled on
request); an unreachable venue leaves the journal as it was."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from execution_support import (
    Desk,
    cross_opportunity,
    journal_orders,
    open_desk,
    sim_base_net,
    sim_configs,
    sim_orders,
    sim_pnl,
)

from arbot.engine import ids
from arbot.engine._accounting import Outcome
from arbot.engine.journal import ENTRY
from arbot.engine.reconcile import reconcile
from arbot.model import Opportunity, Order, OrderStatus, OrderType, Side, TimeInForce
from arbot.sim.server import SimServer

AMOUNT = Decimal("0.0012")


def entry_orders(desk: Desk, opportunity: Opportunity, opportunity_id: int) -> list[Order]:
    return [
        Order(
            ids.entry_id(desk.journal.run_id, opportunity_id, index),
            leg.venue,
            leg.symbol,
            leg.side,
            OrderType.LIMIT,
            leg.amount,
            leg.limit_price,
            TimeInForce.IOC,
        )
        for index, leg in enumerate(opportunity.legs)
    ]


async def interrupted(desk: Desk, sent: int) -> tuple[int, list[Order]]:
    """Journal a cross-exchange opportunity's legs as pending and send only the first
    ``sent`` of them, as a process killed between sending and hearing back leaves it."""
    opportunity = await cross_opportunity(desk, AMOUNT)
    opportunity_id, orders = desk.journal.record_taken(
        opportunity, lambda opp_id: entry_orders(desk, opportunity, opp_id)
    )
    for order in orders[:sent]:
        await desk.venues[order.venue].create_order(order)
    return opportunity_id, orders


async def test_a_journalled_order_that_never_left_is_canceled_not_resent(
    frozen_sim: SimServer, database_url: str
) -> None:
    async with open_desk(sim_configs(frozen_sim), database_url) as desk:
        opportunity_id, orders = await interrupted(desk, sent=0)
        report = await reconcile(desk.journal, desk.venues, cancel_unknown=False)
        assert [o.client_order_id for o in report.not_found] == [o.client_order_id for o in orders]
        assert all(j.order.status is OrderStatus.CANCELED for j in desk.journal.orders())
        assert report.outcomes == {opportunity_id: "failed"}
        assert desk.journal.opportunity(opportunity_id).realised_pnl_quote == 0
        assert report.unresolved == []
        again = await reconcile(desk.journal, desk.venues, cancel_unknown=False)
        assert again.not_found == []
        assert again.settled == []
        assert again.outcomes == {}
    assert sim_orders(frozen_sim, "arb") == []  # nothing was ever sent


async def test_a_sent_order_without_its_answer_is_settled_then_resumed(
    frozen_sim: SimServer, tmp_path: Path
) -> None:
    async with open_desk(sim_configs(frozen_sim), f"sqlite:///{tmp_path / 'a.db'}") as desk:
        opportunity_id, orders = await interrupted(desk, sent=1)
        report = await reconcile(
            desk.journal, desk.venues, cancel_unknown=False, markets=desk.markets
        )
        buy, sell = orders
        assert [o.client_order_id for o in report.settled] == [buy.client_order_id]
        assert [o.client_order_id for o in report.not_found] == [sell.client_order_id]
        assert report.fills_recorded >= 1
        assert report.outcomes == {opportunity_id: "stranded"}
        assert report.residuals == {opportunity_id: {("binance", "BTC"): AMOUNT}}
        ids_sent = [buy.client_order_id]
        assert desk.journal.opportunity(opportunity_id).realised_pnl_quote == sim_pnl(
            frozen_sim, ids_sent
        )
        run = desk.journal.run_id
        sent_only = [row for row in journal_orders(desk.journal, run) if row[6] != "canceled"]
        assert sent_only == sim_orders(frozen_sim, f"arb{run:x}o")

        result = await desk.executor.resume(opportunity_id)
        assert result.outcome is Outcome.UNWOUND
        all_ids = [o.client_order_id for o in result.orders]
        assert sim_base_net(frozen_sim, all_ids) == 0
        record = desk.journal.opportunity(opportunity_id)
        assert record.outcome == "unwound"
        assert record.realised_pnl_quote == sim_pnl(frozen_sim, all_ids)
        sent_only = [row for row in journal_orders(desk.journal, run) if row[6] != "canceled"]
        assert sent_only == sim_orders(frozen_sim, f"arb{run:x}o")


async def test_orders_unknown_to_the_journal_are_reported_and_cancelled_on_request(
    frozen_sim: SimServer, tmp_path: Path
) -> None:
    async with open_desk(sim_configs(frozen_sim), f"sqlite:///{tmp_path / 'a.db'}") as desk:
        book = await desk.venues["binance"].fetch_order_book("BTC/USDT", 5)
        assert book.best_bid is not None
        far = Decimal(round(book.best_bid * 0.9, 2))

        def resting(cid: str) -> Order:
            return Order(
                cid,
                "binance",
                "BTC/USDT",
                Side.BUY,
                OrderType.LIMIT,
                Decimal("0.001"),
                far,
                TimeInForce.GTC,
            )

        ours = resting(ids.entry_id(desk.journal.run_id, 99, 0))
        desk.journal.write_pending([ours], opportunity_id=None, purpose=ENTRY)
        placed = await desk.venues["binance"].create_order(ours)
        desk.journal.update_order(placed)
        await desk.venues["binance"].create_order(resting("manual1"))

        report = await reconcile(desk.journal, desk.venues, cancel_unknown=False)
        assert [o.client_order_id for o in report.unknown_open] == ["manual1"]
        assert report.canceled_unknown == []
        assert not report.clean
        report = await reconcile(desk.journal, desk.venues, cancel_unknown=True)
        assert [o.client_order_id for o in report.canceled_unknown] == ["manual1"]
        assert report.canceled_unknown[0].status is OrderStatus.CANCELED
    statuses = {o.client_order_id: o.status for o in frozen_sim.venues["binance"].orders.values()}
    assert statuses == {ours.client_order_id: "NEW", "manual1": "CANCELED"}


async def test_an_unreachable_venue_leaves_the_journal_as_it_was(
    frozen_sim: SimServer, tmp_path: Path
) -> None:
    async with open_desk(sim_configs(frozen_sim), f"sqlite:///{tmp_path / 'a.db'}") as desk:
        opportunity_id, orders = await interrupted(desk, sent=0)
        frozen_sim.venues["okx"].faults.update({"rest_errors": [503] * 4})
        report = await reconcile(desk.journal, desk.venues, cancel_unknown=False)
        okx_leg = orders[1].client_order_id
        assert okx_leg in {cid for cid, _ in report.unresolved}
        assert "okx" in {cid for cid, _ in report.unresolved}  # its open orders
        assert desk.journal.order(okx_leg) is not None
        stored = desk.journal.order(okx_leg)
        assert stored is not None
        assert stored.order.status is OrderStatus.PENDING
        assert report.outcomes == {}  # not every order is settled yet
        frozen_sim.venues["okx"].faults.clear()
        report = await reconcile(desk.journal, desk.venues, cancel_unknown=False)
        assert [o.client_order_id for o in report.not_found] == [okx_leg]
        assert report.outcomes == {opportunity_id: "failed"}
        assert report.clean


async def test_a_crash_before_the_answer_was_written_loses_no_fill(
    frozen_sim: SimServer, tmp_path: Path
) -> None:
    """Both legs reached the venues, nothing after that was written; a new journal on
    the same database (a restart) records both orders' fills and the outcome."""
    url = f"sqlite:///{tmp_path / 'a.db'}"
    async with open_desk(sim_configs(frozen_sim), url) as desk:
        opportunity_id, orders = await interrupted(desk, sent=2)
        first_run = desk.journal.run_id
    async with open_desk(sim_configs(frozen_sim), url) as restarted:
        assert restarted.journal.run_id != first_run
        report = await reconcile(restarted.journal, restarted.venues, cancel_unknown=False)
        assert report.outcomes == {opportunity_id: "filled"}
        cids = [o.client_order_id for o in orders]
        stored = sorted(
            (f.venue, f.trade_id) for f in restarted.journal.fills(client_order_ids=cids)
        )
        simulated = sorted(
            (name, str(t.trade_id))
            for name, v in frozen_sim.venues.items()
            for t in v.trades
            if t.client_order_id in cids
        )
        assert stored == simulated
        record = restarted.journal.opportunity(opportunity_id)
        assert record.realised_pnl_quote == sim_pnl(frozen_sim, cids)
        assert journal_orders(restarted.journal, first_run) == sim_orders(
            frozen_sim, f"arb{first_run:x}o"
        )
