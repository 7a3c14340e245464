"""Reconciliation: on start, make the journal agree with the venues, never resending.

:func:`reconcile` runs before the executor sends anything:

1. **Unsettled orders** (status not final, or belonging to a taken opportunity with no
   outcome yet, i.e. an execution that was interrupted) are asked of their venue by
   client order id (``fetch_order``):

   * found: the journal takes the venue's status, filled amount, average price and
     exchange id;
   * :class:`~arbot.venues.errors.OrderNotFound`: the order never reached the venue
     (e.g. the process died between writing ``pending`` and sending). It is marked
     ``canceled`` and listed in :attr:`ReconcileReport.not_found`: **nothing is ever
     resent**, so a crash cannot produce a duplicate order;
   * any other failure: left as it is and listed in :attr:`ReconcileReport.unresolved`
     (run again later).

   Fills of every order whose recorded fills add up to less than its filled amount are
   fetched and stored (idempotent on venue + trade id), so every position is recorded.

2. **Interrupted executions** (taken, no outcome) whose orders are all final now get
   their outcome and realised PnL computed from their fills, by the same rules as the
   executor (:mod:`arbot.engine._accounting`). A residual is logged loudly and the
   outcome is ``stranded``; reconciliation does not trade it away
   (:meth:`arbot.engine.executor.Executor.resume` can, once the operator wants it).

3. **Unknown open orders**: every venue's open orders whose client order id the journal
   does not know are reported, and cancelled when ``cancel_unknown`` is true
   (``risk.cancel_unknown_orders``).

Run it while no executor of the same book of record is trading: an order in flight
would look unsettled.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import TYPE_CHECKING

from loguru import logger

from arbot.engine._accounting import Outcome, summarise
from arbot.engine._accounting import is_dust as too_small
from arbot.engine.journal import UNWIND, Journal, JournalOrder
from arbot.model import ZERO, Market, Order, OrderStatus
from arbot.venues.errors import OrderNotFound, VenueError

if TYPE_CHECKING:
    from arbot.venues.base import Venue


@dataclass(slots=True)
class ReconcileReport:
    """What reconciliation found and did."""

    settled: list[Order] = field(default_factory=list)
    """Journal orders updated from the venue's answer."""
    not_found: list[Order] = field(default_factory=list)
    """Journal orders the venue does not know (never sent): marked ``canceled``."""
    unresolved: list[tuple[str, str]] = field(default_factory=list)
    """``(client order id or venue, problem)`` that could not be settled now."""
    fills_recorded: int = 0
    outcomes: dict[int, str] = field(default_factory=dict)
    """Opportunity id -> outcome recorded for an interrupted execution."""
    realised_pnl: dict[int, Decimal] = field(default_factory=dict)
    residuals: dict[int, dict[tuple[str, str], Decimal]] = field(default_factory=dict)
    """Opportunity id -> residual position left by an interrupted execution."""
    unknown_open: list[Order] = field(default_factory=list)
    """Open on a venue, unknown to the journal."""
    canceled_unknown: list[Order] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """Nothing unresolved, stranded or unknown."""
        return not (
            self.unresolved
            or self.unknown_open
            or any(r for r in self.residuals.values())
            or any(o == Outcome.STRANDED for o in self.outcomes.values())
        )


async def reconcile(
    journal: Journal,
    venues: Mapping[str, Venue],
    *,
    cancel_unknown: bool,
    markets: Mapping[tuple[str, str], Market] | None = None,
) -> ReconcileReport:
    """Settle the journal against ``venues``; see the module docstring.

    ``markets`` (optional) lets a residual too small to trade count as dust rather than
    make an execution ``stranded``, as the executor decides it.
    """
    report = ReconcileReport()
    for entry in journal.orders(unsettled=True):
        await _settle_order(journal, venues, entry, report)
    _finish_interrupted(journal, markets, report)
    for name, venue in venues.items():
        await _unknown_open_orders(journal, name, venue, cancel_unknown, report)
    if report.clean:
        logger.info("reconciliation: the journal agrees with every venue")
    return report


async def _settle_order(
    journal: Journal, venues: Mapping[str, Venue], entry: JournalOrder, report: ReconcileReport
) -> None:
    order = entry.order
    cid = order.client_order_id
    venue = venues.get(order.venue)
    if venue is None:
        report.unresolved.append((cid, f"venue {order.venue} is not configured"))
        return
    if not order.status.is_final:
        try:
            live = await venue.fetch_order(order)
        except OrderNotFound:
            gone = replace(order, status=OrderStatus.CANCELED)
            journal.update_order(gone)
            report.not_found.append(gone)
            logger.warning(
                "reconciliation: {} ({}) was journalled {} but {} does not know it: never "
                "sent; marked canceled, not resent",
                cid,
                entry.purpose,
                order.status.value,
                order.venue,
            )
            return
        except VenueError as exc:
            report.unresolved.append((cid, str(exc)))
            return
        order = replace(live, client_order_id=cid)
        journal.update_order(order)
        report.settled.append(order)
        if not order.status.is_final:
            report.unresolved.append((cid, f"still {order.status.value} on {order.venue}"))
    if order.filled > 0:
        recorded = sum((f.amount for f in journal.fills(client_order_ids=[cid])), ZERO)
        if recorded < order.filled:
            try:
                fills = await venue.fetch_order_fills(order)
            except VenueError as exc:
                report.unresolved.append((cid, f"fills: {exc}"))
                return
            report.fills_recorded += journal.record_fills(
                [replace(f, client_order_id=cid) for f in fills]
            )
            if sum((f.amount for f in fills), ZERO) < order.filled:
                report.unresolved.append((cid, "the venue reports fewer fills than filled"))


def _finish_interrupted(
    journal: Journal,
    markets: Mapping[tuple[str, str], Market] | None,
    report: ReconcileReport,
) -> None:
    for record in journal.opportunities(unfinished=True):
        entries = journal.orders(opportunity_id=record.id)
        if any(not e.order.status.is_final for e in entries):
            continue
        fills = journal.fills(opportunity_id=record.id)
        filled = {e.order.client_order_id: e.order.filled for e in entries}
        if any(
            sum((f.amount for f in fills if f.client_order_id == cid), ZERO) < amount
            for cid, amount in filled.items()
        ):
            continue  # fills missing: reported as unresolved above
        summary = summarise(
            fills,
            record.quote,
            unwind_ids=[e.order.client_order_id for e in entries if e.purpose == UNWIND],
            dust=_dust_test(markets, record.quote) if markets else None,
        )
        journal.record_outcome(record.id, summary.outcome.value, summary.realised_pnl_quote)
        report.outcomes[record.id] = summary.outcome.value
        report.realised_pnl[record.id] = summary.realised_pnl_quote
        if summary.residual:
            report.residuals[record.id] = summary.residual
        if summary.outcome is Outcome.STRANDED:
            held = ", ".join(f"{n} {a} on {v}" for (v, a), n in summary.residual.items())
            logger.error(
                "reconciliation: opportunity {} was interrupted and is STRANDED: residual "
                "position {}; realised PnL {} {}",
                record.id,
                held,
                summary.realised_pnl_quote,
                record.quote,
            )
        else:
            logger.warning(
                "reconciliation: opportunity {} was interrupted; outcome {}",
                record.id,
                summary.outcome.value,
            )


def _dust_test(
    markets: Mapping[tuple[str, str], Market], quote: str
) -> Callable[[str, Decimal, Decimal | None], bool]:
    def is_dust(asset: str, amount: Decimal, basis: Decimal | None) -> bool:
        found = [m for (_, s), m in markets.items() if s == f"{asset}/{quote}"]
        return too_small(found, amount, basis)

    return is_dust


async def _unknown_open_orders(
    journal: Journal, name: str, venue: Venue, cancel_unknown: bool, report: ReconcileReport
) -> None:
    try:
        open_orders = await venue.fetch_open_orders()
    except VenueError as exc:
        report.unresolved.append((name, f"open orders: {exc}"))
        return
    known = journal.known(o.client_order_id for o in open_orders)
    for order in open_orders:
        if order.client_order_id in known:
            continue
        report.unknown_open.append(order)
        if not cancel_unknown:
            logger.error(
                "reconciliation: {} has an open order the journal does not know: {} {} {} "
                "{} @ {} (client id {!r}); set risk.cancel_unknown_orders to cancel such orders",
                name,
                order.symbol,
                order.side.value,
                order.amount,
                order.exchange_order_id,
                order.price,
                order.client_order_id,
            )
            continue
        try:
            canceled = await venue.cancel_order(order)
        except VenueError as exc:
            report.unresolved.append((order.client_order_id or name, f"cancel: {exc}"))
            continue
        report.canceled_unknown.append(canceled)
        logger.warning(
            "reconciliation: cancelled {} order {} ({}) unknown to the journal",
            name,
            order.exchange_order_id,
            order.client_order_id,
        )
