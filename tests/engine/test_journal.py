"""The journal round-trips orders, fills and outcomes exactly (SQLite, and PostgreSQL when
``ARBOT_TEST_DATABASE_URL`` is set), and client order ids fit every venue."""

from __future__ import annotations

import re
from dataclasses import replace
from decimal import Decimal

import pytest

from arbot.engine import ids
from arbot.engine.journal import ENTRY, UNWIND, Journal
from arbot.model import (
    BookStamp,
    Fill,
    Leg,
    Opportunity,
    Order,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from arbot.store import Store

OPPORTUNITY = Opportunity(
    strategy="cross_exchange",
    legs=(
        Leg("binance", "BTC/USDT", Side.BUY, Decimal("0.00123"), Decimal("60000.01")),
        Leg("okx", "BTC/USDT", Side.SELL, Decimal("0.00123"), Decimal("60100.5")),
    ),
    edge_quote=Decimal("0.0123456789"),
    edge_bps=Decimal("1.5"),
    quote="USDT",
    created_ns=1_790_000_000_123_456_789,
    books=(BookStamp("binance", "BTC/USDT", 1_790_000_000_120, 1_790_000_000_121_000_000),),
)


def orders_for(run_id: int, opportunity_id: int) -> list[Order]:
    return [
        Order(
            ids.entry_id(run_id, opportunity_id, index),
            leg.venue,
            leg.symbol,
            leg.side,
            OrderType.LIMIT,
            leg.amount,
            leg.limit_price,
            TimeInForce.IOC,
        )
        for index, leg in enumerate(OPPORTUNITY.legs)
    ]


def a_fill(order: Order, trade_id: str, amount: str, price: str) -> Fill:
    return Fill(
        order.venue,
        order.symbol,
        order.side,
        Decimal(amount),
        Decimal(price),
        Decimal("0.00000123"),
        "BTC",
        1_790_000_000_500,
        order.client_order_id,
        trade_id,
    )


def test_an_execution_round_trips(database_url: str) -> None:
    with Store(database_url) as store:
        journal = Journal.start_run(store, mode="live", strategy="cross_exchange")
        opportunity_id, orders = journal.record_taken(
            OPPORTUNITY, lambda opp_id: orders_for(journal.run_id, opp_id)
        )
        pending = journal.orders(run_id=journal.run_id)
        assert [j.order for j in pending] == [
            replace(o, created_ms=j.order.created_ms, updated_ms=j.order.updated_ms)
            for o, j in zip(orders, pending, strict=True)
        ]
        assert all(j.order.status is OrderStatus.PENDING and j.purpose == ENTRY for j in pending)
        assert all(j.opportunity_id == opportunity_id and j.sent_at is None for j in pending)
        assert {j.order.client_order_id for j in journal.orders(unsettled=True)} == {
            o.client_order_id for o in orders
        }

        buy = replace(
            orders[0],
            status=OrderStatus.FILLED,
            filled=Decimal("0.00123"),
            average_price=Decimal("60000.005"),
            exchange_order_id="42",
        )
        from arbot.store._types import utcnow

        journal.update_order(buy, sent_at=utcnow())
        fills = [
            a_fill(buy, "t1", "0.001", "60000"),
            a_fill(buy, "t2", "0.00023", "60000.0217391304347826"),
        ]
        assert journal.record_fills(fills) == 2
        assert journal.record_fills(fills) == 0  # idempotent on (venue, trade id)
        assert journal.fills(opportunity_id=opportunity_id) == fills
        stored = journal.order(buy.client_order_id)
        assert stored is not None
        assert stored.order.filled == Decimal("0.00123")
        assert stored.order.average_price == Decimal("60000.005")
        assert stored.order.exchange_order_id == "42"
        assert stored.sent_at is not None

        unwind = Order(
            ids.unwind_id(journal.run_id, opportunity_id, 0),
            "okx",
            "BTC/USDT",
            Side.SELL,
            OrderType.LIMIT,
            Decimal("0.00123"),
            Decimal("59700"),
        )
        journal.write_pending([unwind], opportunity_id=opportunity_id, purpose=UNWIND)
        assert journal.order(unwind.client_order_id) is not None
        assert journal.known([unwind.client_order_id, "someone-else"]) == {unwind.client_order_id}

        record = journal.opportunity(opportunity_id)
        assert record.taken
        assert record.outcome is None
        assert record.legs[1] == {
            "venue": "okx",
            "symbol": "BTC/USDT",
            "side": "sell",
            "amount": "0.00123",
            "limit_price": "60100.5",
        }
        assert [r.id for r in journal.opportunities(unfinished=True)] == [opportunity_id]
        journal.record_outcome(opportunity_id, "stranded", Decimal("-0.000000000000000000001"))
        record = journal.opportunity(opportunity_id)
        assert record.outcome == "stranded"
        assert record.realised_pnl_quote == Decimal("-0.000000000000000000001")
        assert journal.opportunities(unfinished=True) == []
        # settled orders of a finished opportunity: only the non-final ones remain
        assert {j.order.client_order_id for j in journal.orders(unsettled=True)} == {
            orders[1].client_order_id,
            unwind.client_order_id,
        }
        journal.finish_run()


def test_a_rejected_opportunity_keeps_its_reason(database_url: str) -> None:
    with Store(database_url) as store:
        journal = Journal.start_run(store)
        opportunity_id = journal.record_opportunity(
            OPPORTUNITY, taken=False, reason="insufficient_balance"
        )
        record = journal.opportunity(opportunity_id)
        assert not record.taken
        assert record.reason == "insufficient_balance"
        assert journal.orders() == []


def test_a_client_order_id_is_written_once(database_url: str) -> None:
    from sqlalchemy.exc import IntegrityError

    with Store(database_url) as store:
        journal = Journal.start_run(store)
        opportunity_id = journal.record_opportunity(OPPORTUNITY, taken=True)
        orders = orders_for(journal.run_id, opportunity_id)
        journal.write_pending(orders, opportunity_id=opportunity_id, purpose=ENTRY)
        with pytest.raises(IntegrityError):
            journal.write_pending(orders[:1], opportunity_id=opportunity_id, purpose=ENTRY)


@pytest.mark.parametrize(
    ("run", "opportunity", "index"), [(1, 1, 0), (0xFFFF, 0xFFFFFFFF, 9), (10**6, 10**9, 255)]
)
def test_client_order_ids_fit_binance_and_okx(run: int, opportunity: int, index: int) -> None:
    for make, purpose in ((ids.entry_id, "entry"), (ids.unwind_id, "unwind")):
        cid = make(run, opportunity, index)
        assert re.fullmatch(r"[A-Za-z][A-Za-z0-9]{0,31}", cid)  # OKX clOrdId
        assert re.fullmatch(r"[.A-Z:/a-z0-9_-]{1,36}", cid)  # Binance newClientOrderId
        assert ids.parse(cid) == ids.ClientOrderId(run, opportunity, purpose, index)
    assert ids.entry_id(run, opportunity, index) != ids.unwind_id(run, opportunity, index)
    assert ids.parse("x-abc") is None


def test_an_id_too_long_for_okx_is_refused() -> None:
    with pytest.raises(ValueError, match="longer than 32"):
        ids.entry_id(16**14, 16**14, 0)
