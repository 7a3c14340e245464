"""A backtest's rows in the store (SQLite and PostgreSQL) are its results, tied together:
every order points at its own opportunity's row, every fill at its order's row, client
order ids carry the opportunity's row id, and a second run in the same store numbers
its rows after the first's."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from backtest_support import settings_from, write_books
from sqlalchemy import select
from test_screened import pair_text, random_books

from arbot.backtest.runner import Backtest
from arbot.engine import ids
from arbot.engine.journal import Journal
from arbot.store import FillRow, OrderRow, Store


def test_runs_in_one_store_keep_their_rows_linked(tmp_path: Path, database_url: str) -> None:
    root = write_books(tmp_path / "books", random_books(3, 300, 2, 0.3))
    settings = settings_from(
        tmp_path, f'database_url = "{database_url}"\n' + pair_text("0", 0, (0, 0), 0)
    )
    store = Store(database_url)
    try:
        runs = [Backtest(settings, root, store=store).run() for _ in range(2)]
        journal = Journal(store, 0)
        fill_table = FillRow.__table__  # type: ignore[attr-defined]
        order_table = OrderRow.__table__  # type: ignore[attr-defined]
        for result in runs:
            summary = result.summary
            opportunities = journal.opportunities(run_id=result.run_id)
            taken = [o for o in opportunities if o.taken]
            assert len(opportunities) == summary["opportunities_seen"] > 0
            assert len(taken) == summary["opportunities_taken"]
            orders = journal.orders(run_id=result.run_id)
            by_id = {o.id: o for o in opportunities}
            for entry in orders:
                owner = by_id[entry.opportunity_id]  # the row of this run's opportunity
                parsed = ids.parse(entry.order.client_order_id)
                assert parsed is not None
                assert (parsed.run_id, parsed.opportunity_id) == (result.run_id, owner.id)
            fills = journal.fills(run_id=result.run_id)
            assert len(fills) == summary["fills"]
            assert sum((f.amount for f in fills), Decimal(0)) > 0
            with store.engine.connect() as connection:
                order_rows = dict(
                    connection.execute(
                        select(order_table.c.client_order_id, order_table.c.id).where(
                            order_table.c.run_id == result.run_id
                        )
                    ).all()
                )
                assert len(order_rows) == len(orders)
                linked = connection.execute(
                    select(fill_table.c.client_order_id, fill_table.c.order_id).where(
                        fill_table.c.client_order_id.in_(list(order_rows))
                    )
                ).all()
            assert len(linked) == len(fills)
            assert all(order_rows[client_id] == row for client_id, row in linked)
        first, second = (journal.opportunities(run_id=r.run_id) for r in runs)
        assert max(o.id for o in first) < min(o.id for o in second)
    finally:
        store.close()
