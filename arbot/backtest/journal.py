"""The backtest's journal: the same rows as the daemon's, written in bulk.

The daemon commits every journal write before it goes on (an order is on disk before
it is sent: that is what makes a crash harmless). A backtest has nothing to protect
from a crash, and one commit per write (about 1 ms on SQLite) would dominate it: on
the LINK/USDT set with zero fees (1,339 executions), 8.1 s with a commit per write
against 2.2 s buffered. So
:class:`BufferedJournal` keeps the run's opportunities, orders and fills in memory and
writes them in one transaction (multi-row inserts) by :meth:`BufferedJournal.flush`,
which the backtest calls whenever no execution is under way and a few thousand rows
are waiting, and at the end. A backtest that crashes leaves its run row (status
``failed``) and the rows flushed before.

Ids: during the run an opportunity's id is its *run-relative* number (1, 2, ... over
every opportunity recorded, taken or not) and the executor builds client order ids
from it (``arb{run}o{n}l{leg}``). The store numbers rows itself, so a flush maps each
opportunity to its row id and rewrites its orders' and fills' client order ids to
``arb{run}o{row id}...``, as the daemon's journal would have written them.

Reads (``orders()``, ``fills()``, ...) see the store, i.e. what was flushed.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Table, func, insert, select

from arbot.engine import ids
from arbot.engine.journal import (
    ENTRY,
    Journal,
    fill_values,
    opportunity_values,
    order_update_values,
    order_values,
)
from arbot.errors import StoreError
from arbot.model import Fill, Opportunity, Order
from arbot.store import FillRow, OpportunityRow, OrderRow
from arbot.store._types import utcnow

if TYPE_CHECKING:
    from arbot.store import Store

_OPPORTUNITIES: Table = OpportunityRow.__table__  # type: ignore[attr-defined]
_ORDERS: Table = OrderRow.__table__  # type: ignore[attr-defined]
_FILLS: Table = FillRow.__table__  # type: ignore[attr-defined]

Seen = Callable[[Opportunity], None]


class BufferedJournal(Journal):
    """A :class:`Journal` whose writes wait in memory until :meth:`flush`.

    ``seen`` is called with every opportunity recorded (taken or rejected).
    """

    def __init__(self, store: Store, run_id: int, *, seen: Seen | None = None) -> None:
        super().__init__(store, run_id)
        self._seen = seen
        self._numbers = itertools.count(1)
        self._opportunities: dict[int, dict[str, Any]] = {}
        self._orders: dict[str, dict[str, Any]] = {}
        self._fills: list[dict[str, Any]] = []
        self._trades: set[tuple[str, str]] = set()

    @property
    def pending_rows(self) -> int:
        """Rows waiting for :meth:`flush`."""
        return len(self._opportunities) + len(self._orders) + len(self._fills)

    # ----- writes (buffered) ------------------------------------------------------------

    def record_opportunity(
        self, opportunity: Opportunity, *, taken: bool, reason: str | None = None
    ) -> int:
        if self._seen is not None:
            self._seen(opportunity)
        number = next(self._numbers)
        row = opportunity_values(self.run_id, opportunity, taken, reason)
        row.update(outcome=None, realized_pnl_quote=None)  # one multi-row insert: same keys
        self._opportunities[number] = row
        return number

    def record_taken(
        self, opportunity: Opportunity, orders_for: Callable[[int], Sequence[Order]]
    ) -> tuple[int, list[Order]]:
        number = self.record_opportunity(opportunity, taken=True)
        orders = list(orders_for(number))
        self.write_pending(orders, opportunity_id=number, purpose=ENTRY)
        return number, orders

    def write_pending(
        self, orders: Sequence[Order], *, opportunity_id: int | None, purpose: str
    ) -> None:
        now = utcnow()
        for order in orders:
            self._orders[order.client_order_id] = order_values(
                self.run_id, order, opportunity_id, purpose, now
            )

    def update_order(self, order: Order, *, sent_at: datetime | None = None) -> None:
        self._orders[order.client_order_id].update(order_update_values(order, sent_at))

    def record_fills(self, fills: Iterable[Fill]) -> int:
        new = 0
        for fill in fills:
            key = (fill.venue, fill.trade_id)
            if key not in self._trades:
                self._trades.add(key)
                self._fills.append(fill_values(fill, None))
                new += 1
        return new

    def record_outcome(
        self, opportunity_id: int, outcome: str, realised_pnl_quote: Decimal
    ) -> None:
        self._opportunities[opportunity_id].update(
            outcome=outcome, realized_pnl_quote=realised_pnl_quote
        )

    # ----- the bulk write ---------------------------------------------------------------

    def flush(self) -> None:
        """Write every waiting row in one transaction (call when no execution is under
        way: an order or outcome written later must not belong to a flushed row)."""
        if not self.pending_rows:
            return
        numbers = list(self._opportunities)
        with self.store.engine.begin() as connection:
            rows: dict[int, int] = {}
            if numbers:
                waiting = [self._opportunities[n] for n in numbers]
                rows = dict(zip(numbers, _insert(connection, _OPPORTUNITIES, waiting), strict=True))
            renamed: dict[str, str] = {}
            orders = []
            for client_id, values in self._orders.items():
                number = values["opportunity_id"]
                row = rows.get(number, number)
                renamed[client_id] = _renumbered(client_id, row)
                orders.append(
                    {**values, "opportunity_id": row, "client_order_id": renamed[client_id]}
                )
            order_rows: dict[str, int] = {}
            if orders:
                order_rows = dict(
                    zip(
                        (o["client_order_id"] for o in orders),
                        _insert(connection, _ORDERS, orders),
                        strict=True,
                    )
                )
            if self._fills:
                fills = []
                for values in self._fills:
                    client_id = renamed.get(values["client_order_id"], values["client_order_id"])
                    fills.append(
                        {
                            **values,
                            "client_order_id": client_id,
                            "order_id": order_rows.get(client_id),
                        }
                    )
                connection.execute(insert(_FILLS), fills)
        self._opportunities.clear()
        self._orders.clear()
        self._fills.clear()

    def finish_run(self, status: str = "finished") -> None:
        self.flush()
        super().finish_run(status)


def _insert(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> list[int]:
    """Insert ``rows`` in order; their ids, in the same order.

    SQLite cannot batch ``INSERT ... RETURNING`` in parameter order (SQLAlchemy sends
    one statement per row), but inside this transaction nothing else can write the
    database, and a table whose key is the rowid numbers a batch consecutively from
    the largest id: one ``executemany``, then ``last_insert_rowid()``. Checked, not
    assumed: the ids must hold exactly these rows' run.
    """
    if connection.dialect.name != "sqlite":
        result = connection.execute(
            insert(table).returning(table.c.id, sort_by_parameter_order=True), rows
        )
        return list(result.scalars().all())
    connection.execute(insert(table), rows)
    last = int(connection.exec_driver_sql("SELECT last_insert_rowid()").scalar_one())
    first = last - len(rows) + 1
    found = connection.execute(
        select(func.count()).where(table.c.id.between(first, last))
    ).scalar_one()
    if found != len(rows):  # pragma: no cover - would mean the rowids were not consecutive
        raise StoreError(f"{table.name}: a bulk insert was not numbered consecutively")
    return list(range(first, last + 1))


def _renumbered(client_order_id: str, opportunity_row: int) -> str:
    parts = ids.parse(client_order_id)
    if parts is None:
        return client_order_id
    return str(ids.ClientOrderId(parts.run_id, opportunity_row, parts.purpose, parts.index))


__all__ = ["BufferedJournal"]
