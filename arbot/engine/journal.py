"""The order journal: typed writes and reads of ``runs``, ``opportunities``, ``orders``
and ``fills`` in the store.

Write discipline (what makes a crash harmless):

1. An order is written as ``pending`` and **committed before it is sent**. After a crash
   every order that may have reached a venue has a row, so reconciliation can ask the
   venue about it by client order id; an order is never sent twice because nothing
   resends a journalled order.
2. The venue's answer updates the row (exchange id, status, filled, average price, and
   ``sent_at``: when the request went out).
3. Fills are inserted idempotently (``venues`` + ``trade_id`` is unique: a fill seen
   twice is stored once) **before** the order's final status is relied on elsewhere, and
   reconciliation re-fetches fills of any order whose recorded fills fall short of its
   filled amount.
4. The outcome and realised PnL go on the opportunity row last; a row without an outcome
   is an execution that did not finish (reconciliation finishes it).

Speed: each write is one SQLAlchemy Core statement batch in one transaction (no ORM
unit of work). On SQLite (WAL, ``synchronous`` as the store sets it: FULL by default,
so a commit survives power loss too) a commit costs a few hundred microseconds; the hot
path has one: :meth:`Journal.record_taken` writes the opportunity and its pending legs
together. ``scripts/bench_execution.py`` reports it. Writes are synchronous calls on
the event loop: they are short, and ordering them with the sends is the point.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, and_, insert, or_, select, update
from sqlalchemy.engine import Connection

from arbot import __version__
from arbot.model import ZERO, Fill, Opportunity, Order, OrderStatus, OrderType, Side, TimeInForce
from arbot.store import FillRow, OpportunityRow, OrderRow, RunRow, Store
from arbot.store._types import utcnow

_RUNS: Table = RunRow.__table__  # type: ignore[attr-defined]
_OPPORTUNITIES: Table = OpportunityRow.__table__  # type: ignore[attr-defined]
_ORDERS: Table = OrderRow.__table__  # type: ignore[attr-defined]
_FILLS: Table = FillRow.__table__  # type: ignore[attr-defined]

ENTRY = "entry"
UNWIND = "unwind"
NON_FINAL = tuple(s.value for s in OrderStatus if not s.is_final)


@dataclass(frozen=True, slots=True)
class JournalOrder:
    """An order as the journal holds it, with where it belongs."""

    order: Order
    opportunity_id: int | None
    run_id: int | None
    purpose: str
    sent_at: datetime | None


@dataclass(frozen=True, slots=True)
class OpportunityRecord:
    id: int
    run_id: int | None
    strategy: str
    quote: str
    taken: bool
    reason: str | None
    outcome: str | None
    realised_pnl_quote: Decimal | None
    legs: list[dict[str, Any]]


def _ms_to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC) if ms else utcnow()


class Journal:
    """Writer and reader of one run's executions (reads may span every run)."""

    def __init__(self, store: Store, run_id: int) -> None:
        self.store = store
        self.run_id = run_id
        self._upsert_fills = _fill_inserter(store)

    @classmethod
    def start_run(
        cls,
        store: Store,
        *,
        mode: str = "live",
        strategy: str = "",
        config: dict[str, Any] | None = None,
    ) -> Journal:
        """A new ``runs`` row (status ``running``) and a journal writing under it."""
        with store.engine.begin() as connection:
            key = connection.execute(
                insert(_RUNS).values(
                    mode=mode,
                    status="running",
                    strategy=strategy,
                    arbot_version=__version__,
                    started_at=utcnow(),
                    config=config or {},
                )
            ).inserted_primary_key
        assert key is not None
        return cls(store, int(key[0]))

    def finish_run(self, status: str = "finished") -> None:
        with self.store.engine.begin() as connection:
            connection.execute(
                update(_RUNS)
                .where(_RUNS.c.id == self.run_id)
                .values(status=status, ended_at=utcnow())
            )

    # ----- writes ---------------------------------------------------------------------

    def record_opportunity(
        self, opportunity: Opportunity, *, taken: bool, reason: str | None = None
    ) -> int:
        """Store a proposal, taken or rejected (``reason``: the failing check's name)."""
        with self.store.engine.begin() as connection:
            return self._insert_opportunity(connection, opportunity, taken, reason)

    def record_taken(
        self, opportunity: Opportunity, orders_for: Callable[[int], Sequence[Order]]
    ) -> tuple[int, list[Order]]:
        """Store a taken opportunity and its entry orders as ``pending``, in one commit.

        ``orders_for(opportunity_id)`` builds the orders (their ids need the row id).
        """
        with self.store.engine.begin() as connection:
            opportunity_id = self._insert_opportunity(connection, opportunity, True, None)
            orders = list(orders_for(opportunity_id))
            self._insert_orders(connection, orders, opportunity_id, ENTRY)
        return opportunity_id, orders

    def write_pending(
        self, orders: Sequence[Order], *, opportunity_id: int | None, purpose: str
    ) -> None:
        """Journal ``orders`` as ``pending``, committed, before any of them is sent."""
        with self.store.engine.begin() as connection:
            self._insert_orders(connection, orders, opportunity_id, purpose)

    def update_order(self, order: Order, *, sent_at: datetime | None = None) -> None:
        """Take the venue's view of ``order`` (matched by client order id)."""
        with self.store.engine.begin() as connection:
            connection.execute(
                update(_ORDERS)
                .where(_ORDERS.c.client_order_id == order.client_order_id)
                .values(**order_update_values(order, sent_at))
            )

    def record_fills(self, fills: Iterable[Fill]) -> int:
        """Insert fills not seen before (by venue and trade id); returns how many were new."""
        fills = list(fills)
        if not fills:
            return 0
        with self.store.engine.begin() as connection:
            ids = dict(
                connection.execute(
                    select(_ORDERS.c.client_order_id, _ORDERS.c.id).where(
                        _ORDERS.c.client_order_id.in_({f.client_order_id for f in fills})
                    )
                ).all()
            )
            rows = [fill_values(f, ids.get(f.client_order_id)) for f in fills]
            return self._upsert_fills(connection, rows)

    def record_outcome(
        self, opportunity_id: int, outcome: str, realised_pnl_quote: Decimal
    ) -> None:
        with self.store.engine.begin() as connection:
            connection.execute(
                update(_OPPORTUNITIES)
                .where(_OPPORTUNITIES.c.id == opportunity_id)
                .values(outcome=outcome, realized_pnl_quote=realised_pnl_quote)
            )

    # ----- reads ----------------------------------------------------------------------

    def orders(
        self,
        *,
        run_id: int | None = None,
        opportunity_id: int | None = None,
        unsettled: bool = False,
    ) -> list[JournalOrder]:
        """Orders in journal order. ``unsettled``: not final, or of an unfinished
        opportunity (taken, no outcome yet): what reconciliation must look at."""
        query = select(_ORDERS).order_by(_ORDERS.c.id)
        if run_id is not None:
            query = query.where(_ORDERS.c.run_id == run_id)
        if opportunity_id is not None:
            query = query.where(_ORDERS.c.opportunity_id == opportunity_id)
        if unsettled:
            unfinished = select(_OPPORTUNITIES.c.id).where(
                and_(_OPPORTUNITIES.c.taken.is_(True), _OPPORTUNITIES.c.outcome.is_(None))
            )
            query = query.where(
                or_(_ORDERS.c.status.in_(NON_FINAL), _ORDERS.c.opportunity_id.in_(unfinished))
            )
        with self.store.engine.connect() as connection:
            return [_journal_order(row) for row in connection.execute(query).mappings()]

    def order(self, client_order_id: str) -> JournalOrder | None:
        with self.store.engine.connect() as connection:
            row = (
                connection.execute(
                    select(_ORDERS).where(_ORDERS.c.client_order_id == client_order_id)
                )
                .mappings()
                .first()
            )
        return None if row is None else _journal_order(row)

    def known(self, client_order_ids: Iterable[str]) -> set[str]:
        """Which of these client order ids the journal has (in any run)."""
        wanted = set(client_order_ids)
        if not wanted:
            return set()
        with self.store.engine.connect() as connection:
            return set(
                connection.execute(
                    select(_ORDERS.c.client_order_id).where(_ORDERS.c.client_order_id.in_(wanted))
                ).scalars()
            )

    def fills(
        self,
        *,
        client_order_ids: Iterable[str] | None = None,
        opportunity_id: int | None = None,
        run_id: int | None = None,
    ) -> list[Fill]:
        query = select(_FILLS).order_by(_FILLS.c.id)
        if client_order_ids is not None:
            query = query.where(_FILLS.c.client_order_id.in_(set(client_order_ids)))
        if opportunity_id is not None or run_id is not None:
            owners = select(_ORDERS.c.client_order_id)
            if opportunity_id is not None:
                owners = owners.where(_ORDERS.c.opportunity_id == opportunity_id)
            if run_id is not None:
                owners = owners.where(_ORDERS.c.run_id == run_id)
            query = query.where(_FILLS.c.client_order_id.in_(owners))
        with self.store.engine.connect() as connection:
            return [
                Fill(
                    venue=row["venue"],
                    symbol=row["symbol"],
                    side=Side(row["side"]),
                    amount=row["amount"],
                    price=row["price"],
                    fee=row["fee"],
                    fee_currency=row["fee_currency"],
                    timestamp_ms=int(row["executed_at"].timestamp() * 1000),
                    client_order_id=row["client_order_id"],
                    trade_id=row["trade_id"],
                    is_maker=bool(row["is_maker"]),
                )
                for row in connection.execute(query).mappings()
            ]

    def opportunity(self, opportunity_id: int) -> OpportunityRecord:
        found = self.opportunities(ids=[opportunity_id])
        if not found:
            raise KeyError(f"no opportunity {opportunity_id} in the journal")
        return found[0]

    def opportunities(
        self,
        *,
        run_id: int | None = None,
        unfinished: bool = False,
        ids: Iterable[int] | None = None,
    ) -> list[OpportunityRecord]:
        """Opportunities in id order; ``unfinished``: taken with no outcome yet."""
        query = select(_OPPORTUNITIES).order_by(_OPPORTUNITIES.c.id)
        if run_id is not None:
            query = query.where(_OPPORTUNITIES.c.run_id == run_id)
        if ids is not None:
            query = query.where(_OPPORTUNITIES.c.id.in_(list(ids)))
        if unfinished:
            query = query.where(
                and_(_OPPORTUNITIES.c.taken.is_(True), _OPPORTUNITIES.c.outcome.is_(None))
            )
        with self.store.engine.connect() as connection:
            return [
                OpportunityRecord(
                    id=row["id"],
                    run_id=row["run_id"],
                    strategy=row["strategy"],
                    quote=row["quote"],
                    taken=bool(row["taken"]),
                    reason=row["reason"],
                    outcome=row["outcome"],
                    realised_pnl_quote=row["realized_pnl_quote"],
                    legs=list(row["legs"] or []),
                )
                for row in connection.execute(query).mappings()
            ]

    # ----- helpers --------------------------------------------------------------------

    def _insert_opportunity(
        self, connection: Connection, opportunity: Opportunity, taken: bool, reason: str | None
    ) -> int:
        result = connection.execute(
            insert(_OPPORTUNITIES).values(
                **opportunity_values(self.run_id, opportunity, taken, reason)
            )
        )
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])

    def _insert_orders(
        self,
        connection: Connection,
        orders: Sequence[Order],
        opportunity_id: int | None,
        purpose: str,
    ) -> None:
        if not orders:
            return
        now = utcnow()
        connection.execute(
            insert(_ORDERS),
            [order_values(self.run_id, o, opportunity_id, purpose, now) for o in orders],
        )


# ----- rows (shared with writers that batch them, e.g. the backtest's) ---------------------


def opportunity_values(
    run_id: int, opportunity: Opportunity, taken: bool, reason: str | None
) -> dict[str, Any]:
    """The ``opportunities`` row of a proposal (without its id, outcome and PnL)."""
    quote = opportunity.quote
    bought = [
        leg.notional
        for leg in opportunity.legs
        if leg.side is Side.BUY and leg.symbol.split("/")[-1] == quote
    ]
    created = (
        datetime.fromtimestamp(opportunity.created_ns / 1e9, UTC)
        if opportunity.created_ns > 0
        else utcnow()
    )
    return {
        "run_id": run_id,
        "created_at": created,
        "strategy": opportunity.strategy,
        "symbols": ",".join(opportunity.symbols),
        "venues": ",".join(opportunity.venues),
        "quote": quote,
        "edge_quote": opportunity.edge_quote,
        "edge_bps": opportunity.edge_bps,
        "notional_quote": sum(bought, ZERO),
        "taken": taken,
        "reason": reason,
        "legs": [
            {
                "venue": leg.venue,
                "symbol": leg.symbol,
                "side": leg.side.value,
                "amount": str(leg.amount),
                "limit_price": str(leg.limit_price),
            }
            for leg in opportunity.legs
        ],
        "books": [
            {
                "venue": b.venue,
                "symbol": b.symbol,
                "timestamp_ms": b.timestamp_ms,
                "received_ns": b.received_ns,
            }
            for b in opportunity.books
        ],
    }


def order_values(
    run_id: int, order: Order, opportunity_id: int | None, purpose: str, now: datetime
) -> dict[str, Any]:
    """The ``orders`` row of an order about to be sent (``pending``)."""
    return {
        "run_id": run_id,
        "opportunity_id": opportunity_id,
        "client_order_id": order.client_order_id,
        "exchange_order_id": order.exchange_order_id,
        "venue": order.venue,
        "symbol": order.symbol,
        "side": order.side.value,
        "type": order.type.value,
        "time_in_force": order.time_in_force.value,
        "purpose": purpose,
        "amount": order.amount,
        "price": order.price,
        "status": OrderStatus.PENDING.value,
        "filled": ZERO,
        "average_price": None,
        "created_at": now,
        "sent_at": None,
        "updated_at": now,
    }


def order_update_values(order: Order, sent_at: datetime | None) -> dict[str, Any]:
    """The columns the venue's view of ``order`` changes."""
    values: dict[str, Any] = {
        "status": order.status.value,
        "filled": order.filled,
        "average_price": order.average_price,
        "updated_at": utcnow(),
    }
    if order.exchange_order_id is not None:
        values["exchange_order_id"] = order.exchange_order_id
    if sent_at is not None:
        values["sent_at"] = sent_at
    return values


def fill_values(fill: Fill, order_id: int | None) -> dict[str, Any]:
    """The ``fills`` row of ``fill`` (``order_id``: its order's row, if known)."""
    return {
        "order_id": order_id,
        "client_order_id": fill.client_order_id,
        "venue": fill.venue,
        "symbol": fill.symbol,
        "side": fill.side.value,
        "trade_id": fill.trade_id,
        "amount": fill.amount,
        "price": fill.price,
        "fee": fill.fee,
        "fee_currency": fill.fee_currency,
        "is_maker": fill.is_maker,
        "executed_at": _ms_to_datetime(fill.timestamp_ms),
    }


def _journal_order(row: Any) -> JournalOrder:
    order = Order(
        client_order_id=row["client_order_id"],
        venue=row["venue"],
        symbol=row["symbol"],
        side=Side(row["side"]),
        type=OrderType(row["type"]),
        amount=row["amount"],
        price=row["price"],
        time_in_force=TimeInForce(row["time_in_force"]),
        status=OrderStatus(row["status"]),
        filled=row["filled"],
        average_price=row["average_price"],
        exchange_order_id=row["exchange_order_id"],
        created_ms=int(row["created_at"].timestamp() * 1000),
        updated_ms=int(row["updated_at"].timestamp() * 1000),
    )
    return JournalOrder(order, row["opportunity_id"], row["run_id"], row["purpose"], row["sent_at"])


_FillWriter = Callable[[Connection, list[dict[str, Any]]], int]


def _fill_inserter(store: Store) -> _FillWriter:
    """``INSERT ... ON CONFLICT (venue, trade_id) DO NOTHING`` in the store's dialect."""
    statement: Any
    if store.engine.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql  # (it imports asyncpg's dialect too)

        statement = (
            postgresql.insert(_FILLS)
            .on_conflict_do_nothing(index_elements=["venue", "trade_id"])
            .returning(_FILLS.c.id)
        )
    else:
        from sqlalchemy.dialects import sqlite

        statement = (
            sqlite.insert(_FILLS)
            .on_conflict_do_nothing(index_elements=["venue", "trade_id"])
            .returning(_FILLS.c.id)
        )

    def write(connection: Connection, rows: list[dict[str, Any]]) -> int:
        new = 0
        for row in rows:  # per row, RETURNING tells whether it was new (rowcount is not portable)
            new += len(connection.execute(statement, row).all())
        return new

    return write
