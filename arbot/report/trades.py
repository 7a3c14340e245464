"""``arbot report``: what the store says about trading since a moment, as data.

Read straight from the book of record (opportunities, orders, fills), so a report
is the same whether the daemon is running, stopped, or ran on another machine
against the same PostgreSQL database.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func
from sqlalchemy import select as columns
from sqlmodel import col, select

from arbot.store import FillRow, OpportunityRow, OrderRow, Store


@dataclass
class TradeReport:
    since: datetime | None
    run_id: int | None
    opportunities_seen: int = 0
    opportunities_taken: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)
    orders: dict[str, int] = field(default_factory=dict)
    fills: int = 0
    fees: dict[str, Decimal] = field(default_factory=dict)  # by fee currency
    pnl: dict[str, Decimal] = field(default_factory=dict)  # realised, by quote
    turnover: dict[str, Decimal] = field(default_factory=dict)  # fill notional, by quote
    first: datetime | None = None
    last: datetime | None = None
    pnl_points: dict[str, list[tuple[datetime, Decimal]]] = field(default_factory=dict)
    edges_bps: list[float] = field(default_factory=list)  # of every opportunity seen

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: decimals as strings, times as ISO-8601 UTC."""
        return {
            "since": self.since.isoformat() if self.since else None,
            "run_id": self.run_id,
            "opportunities_seen": self.opportunities_seen,
            "opportunities_taken": self.opportunities_taken,
            "rejected": dict(sorted(self.rejected.items())),
            "outcomes": dict(sorted(self.outcomes.items())),
            "orders": dict(sorted(self.orders.items())),
            "fills": self.fills,
            "fees": {k: str(v) for k, v in sorted(self.fees.items())},
            "pnl": {k: str(v) for k, v in sorted(self.pnl.items())},
            "turnover": {k: str(v) for k, v in sorted(self.turnover.items())},
            "first": self.first.isoformat() if self.first else None,
            "last": self.last.isoformat() if self.last else None,
        }


def build_report(
    store: Store, *, since: datetime | None = None, run_id: int | None = None
) -> TradeReport:
    report = TradeReport(since, run_id)
    with store.session() as session:
        query = columns(
            col(OpportunityRow.created_at),
            col(OpportunityRow.quote),
            col(OpportunityRow.taken),
            col(OpportunityRow.reason),
            col(OpportunityRow.outcome),
            col(OpportunityRow.realized_pnl_quote),
            col(OpportunityRow.edge_bps),
        ).order_by(col(OpportunityRow.created_at), col(OpportunityRow.id))
        if since is not None:
            query = query.where(col(OpportunityRow.created_at) >= since)
        if run_id is not None:
            query = query.where(col(OpportunityRow.run_id) == run_id)
        rejected: Counter[str] = Counter()
        outcomes: Counter[str] = Counter()
        for created, quote, taken, reason, outcome, pnl, edge in session.execute(query):
            report.opportunities_seen += 1
            report.edges_bps.append(float(edge))
            report.first = report.first or created
            report.last = created
            if taken:
                report.opportunities_taken += 1
            elif reason:
                rejected[reason] += 1
            if outcome:
                outcomes[outcome] += 1
            if pnl is not None:
                total = report.pnl.get(quote, Decimal(0)) + pnl
                report.pnl[quote] = total
                report.pnl_points.setdefault(quote, []).append((created, total))
        report.rejected = dict(rejected)
        report.outcomes = dict(outcomes)

        orders = select(OrderRow.status, func.count()).group_by(col(OrderRow.status))
        if since is not None:
            orders = orders.where(col(OrderRow.created_at) >= since)
        if run_id is not None:
            orders = orders.where(col(OrderRow.run_id) == run_id)
        report.orders = {status: int(count) for status, count in session.exec(orders)}

        fills = columns(
            col(FillRow.symbol),
            col(FillRow.amount),
            col(FillRow.price),
            col(FillRow.fee),
            col(FillRow.fee_currency),
        )
        if since is not None:
            fills = fills.where(col(FillRow.executed_at) >= since)
        if run_id is not None:
            fills = fills.join(OrderRow, col(OrderRow.id) == col(FillRow.order_id)).where(
                col(OrderRow.run_id) == run_id
            )
        for symbol, amount, price, fee, currency in session.execute(fills):
            report.fills += 1
            quote = symbol.split("/")[1].split(":")[0] if "/" in symbol else ""
            report.turnover[quote] = report.turnover.get(quote, Decimal(0)) + amount * price
            report.fees[currency] = report.fees.get(currency, Decimal(0)) + fee
    return report
