"""What a backtest produces: ``summary.json``, ``trades.csv`` and ``report.html``.

Everything here is computed from replay time and the run's own events, never from the
wall clock or the store's row ids, so the same data, settings and seed give
byte-identical files.

``summary.json`` (money as decimal strings, in the run's quote currency ``quote``:
the quote of most taken opportunities, else of the first market; ``by_quote`` has
the money figures of every quote currency that occurred):

==========================  ==========================================================
key                         meaning
==========================  ==========================================================
``updates``, ``moments``    book updates replayed; instants they formed
``opportunities_seen``      opportunities the strategy proposed (one per moment and
                            legs: see :meth:`~arbot.engine.engine.Engine.on_moment`)
``opportunities_taken``     approved by risk and executed
``rejected``                rejections by risk check name
``outcomes``                executions by outcome (filled, unwound, stranded, failed)
``orders``, ``fills``       orders sent (entry and unwind), fills received
``legs_unwound``            unwind orders that filled something
``pnl_net_quote``           realised PnL after fees (the executor's, summed)
``fees_quote``              fees valued in quote (a fee in base at its fill's price)
``pnl_gross_quote``         ``pnl_net_quote + fees_quote``
``turnover_quote``          sum of fill notionals (price x amount) on quote markets
``max_drawdown_quote``      largest fall of the cumulative realised PnL from its peak
                            (the peak starts at 0), after each execution
``inventory_drift``         per asset: total, each venue's amount, share and target
                            (equal split), deviation and suggested manual transfers
                            (:meth:`~arbot.engine.portfolio.Portfolio.drift_report`)
``balances``                per venue and asset: ``start`` and ``end`` (free + used)
``first``, ``last``         replay time of the first and last moment (UTC)
==========================  ==========================================================

``trades.csv``: one row per fill, in time order: ``time`` (UTC, ms), ``venue``,
``symbol``, ``side``, ``price``, ``amount``, ``fee``, ``fee_currency``,
``client_order_id``, ``opportunity_id``, ``purpose`` (entry or unwind). The ids are
*run-relative*: ``opportunity_id`` numbers the run's opportunities 1, 2, ... (taken or
not, in the order proposed; see :mod:`arbot.backtest.journal`), and
``client_order_id`` is the order's id with run 0 (``arb0o1l0`` is entry leg 0 of
opportunity 1, ``arb0o1u0`` its first unwind order); the store has the same orders
under ``arb{run}o{row id}...``.

``report.html``: the summary, then four SVG charts (:mod:`arbot.report.svg`):
cumulative realised PnL; the spread between venues (per symbol on two venues or more,
``bid(A) / ask(B) - 1`` in bps for each ordered pair, positive when the books cross)
with the trades marked at their decision time; the distribution of the expected edge
(bps) of every opportunity seen; each venue's holding of each traded base asset.
Long replays are sampled for the spread chart (at most ``4 x max_points`` moments are
kept, evenly by moment count, deterministically).
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from arbot.engine import ids
from arbot.engine._accounting import Outcome, fee_in_quote, from_fill, prices_in_quote
from arbot.model import ZERO, Balance, Opportunity, OrderBook, Side
from arbot.venues.fills import EXACT

if TYPE_CHECKING:
    from arbot.engine.engine import Engine
    from arbot.engine.executor import ExecutionResult
    from arbot.engine.portfolio import Portfolio

TRADE_COLUMNS = (
    "time",
    "venue",
    "symbol",
    "side",
    "price",
    "amount",
    "fee",
    "fee_currency",
    "client_order_id",
    "opportunity_id",
    "purpose",
)


def plain(value: Decimal) -> str:
    """A decimal string without exponent or trailing zeros: ``12.5``, ``0``, ``0.0001``."""
    text = f"{value.normalize():f}"
    return "0" if text in ("-0", "0") else text


def iso(ns: int) -> str:
    """UTC time with milliseconds, e.g. ``2021-08-20T00:00:01.000Z``."""
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ns // 1000)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


Sample = tuple[int, tuple[tuple[str, str, float, float], ...]]
"""``(ns, ((venue, symbol, best bid, best ask), ...))``: the tops at one moment."""


@dataclass(slots=True)
class Executed:
    """One finished execution, with the replay times it was decided and finished at."""

    opportunity: Opportunity
    result: ExecutionResult
    decided_ns: int
    finished_ns: int
    spread_bps: float | None
    """``bid(sell venue) / ask(buy venue) - 1`` at decision time, in bps."""


class _Sampler:
    """Keeps every ``stride``-th item; doubles the stride (dropping every other kept
    item) when more than ``limit`` are kept. Deterministic, bounded memory."""

    __slots__ = ("count", "items", "limit", "stride")

    def __init__(self, limit: int) -> None:
        self.limit = max(limit, 2)
        self.stride = 1
        self.count = 0
        self.items: list[Sample] = []

    def due(self) -> bool:
        due = self.count % self.stride == 0
        self.count += 1
        return due

    def add_due(self, n: int, make: Callable[[int], Sample]) -> None:
        """As if :meth:`due` were called for ``n`` more items, adding ``make(k)`` for each
        due one (``k`` its offset among the ``n``), with no call per item not due."""
        base = self.count
        k = -base % self.stride
        while k < n:
            self.add(make(k))
            k += 1 + -(base + k + 1) % self.stride
        self.count = base + n

    def add(self, item: Sample) -> None:
        self.items.append(item)
        if len(self.items) > self.limit:
            self.items = self.items[::2]
            self.stride *= 2


@dataclass
class Recorder:
    """Collects what the results need while the replay runs (cheap per moment)."""

    max_points: int = 2000
    executions: list[Executed] = field(default_factory=list)
    edges_bps: list[float] = field(default_factory=list)
    inventory: list[tuple[int, str, str, Decimal]] = field(default_factory=list)
    spread_books: tuple[tuple[str, str], ...] = ()
    first_ns: int | None = None
    last_ns: int | None = None
    moments: int = 0
    _sampler: _Sampler = field(init=False)
    _assets: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        self._sampler = _Sampler(self.max_points * 4)

    def watch(self, books: Iterable[tuple[str, str]], assets: Iterable[tuple[str, str]]) -> None:
        """Sample these books' tops for the spread chart, these holdings for inventory."""
        by_symbol: dict[str, list[str]] = {}
        for venue, symbol in books:
            by_symbol.setdefault(symbol, []).append(venue)
        self.spread_books = tuple(
            (venue, symbol)
            for symbol, venues in by_symbol.items()
            if len(venues) >= 2
            for venue in venues
        )
        self._assets = tuple(assets)

    def moment(self, ns: int, books: Mapping[tuple[str, str], OrderBook]) -> None:
        if self.first_ns is None:
            self.first_ns = ns
        self.last_ns = ns
        self.moments += 1
        if not self.spread_books or not self._sampler.due():
            return
        tops = []
        for key in self.spread_books:
            book = books.get(key)
            if book is not None and book.bids and book.asks:
                tops.append((key[0], key[1], book.bids[0][0], book.asks[0][0]))
        self._sampler.add((ns, tuple(tops)))

    def seen(self, opportunity: Opportunity) -> None:
        self.edges_bps.append(float(opportunity.edge_bps))

    def holdings(self, ns: int, portfolio: Portfolio) -> None:
        for venue, asset in self._assets:
            self.inventory.append((ns, venue, asset, portfolio.balance(venue, asset).total))

    @property
    def spread_samples(self) -> list[Sample]:
        return self._sampler.items

    @property
    def sampler(self) -> _Sampler:
        """The spread sampler (the screened replay samples skipped moments through it)."""
        return self._sampler


def spread_bps(
    books: Mapping[tuple[str, str], OrderBook], opportunity: Opportunity
) -> float | None:
    """``bid(sell venue) / ask(buy venue) - 1`` in bps for a two-leg opportunity."""
    buys = [leg for leg in opportunity.legs if leg.side is Side.BUY]
    sells = [leg for leg in opportunity.legs if leg.side is Side.SELL]
    if len(buys) != 1 or len(sells) != 1:
        return None
    bought = books.get((buys[0].venue, buys[0].symbol))
    sold = books.get((sells[0].venue, sells[0].symbol))
    if bought is None or sold is None or not bought.asks or not sold.bids:
        return None
    return (sold.bids[0][0] / bought.asks[0][0] - 1.0) * 10_000.0


# ----- the summary --------------------------------------------------------------------


@dataclass
class _Money:
    pnl_net: Decimal = ZERO
    fees: Decimal = ZERO
    turnover: Decimal = ZERO
    peak: Decimal = ZERO
    drawdown: Decimal = ZERO

    def to_dict(self) -> dict[str, str]:
        return {
            "pnl_net_quote": plain(self.pnl_net),
            "fees_quote": plain(self.fees),
            "pnl_gross_quote": plain(self.pnl_net + self.fees),
            "turnover_quote": plain(self.turnover),
            "max_drawdown_quote": plain(self.drawdown),
        }


def _quote_of(symbol: str) -> str:
    return symbol.partition("/")[2].split(":")[0]


def _money(executions: Sequence[Executed]) -> dict[str, _Money]:
    with localcontext(EXACT):  # sums of many fills exceed the default 28 digits
        return _money_exact(executions)


def _money_exact(executions: Sequence[Executed]) -> dict[str, _Money]:
    money: dict[str, _Money] = {}
    for done in executions:
        quote = done.opportunity.quote
        book = money.setdefault(quote, _Money())
        result = done.result
        if result.outcome is Outcome.UNKNOWN:
            continue
        prices = prices_in_quote([from_fill(f) for f in result.fills], quote)
        for fill in result.fills:
            fee = fee_in_quote(fill, quote, prices)
            if fee is not None:
                book.fees += fee
            fill_quote = _quote_of(fill.symbol)
            money.setdefault(fill_quote, _Money()).turnover += fill.amount * fill.price
        book.pnl_net += result.realised_pnl_quote
        book.peak = max(book.peak, book.pnl_net)
        book.drawdown = max(book.drawdown, book.peak - book.pnl_net)
    return money


def summary(
    engine: Engine,
    portfolio: Portfolio,
    recorder: Recorder,
    starting: Iterable[Balance],
    *,
    seed: int,
) -> dict[str, Any]:
    """The ``summary.json`` document (see the module docstring)."""
    executions = recorder.executions
    money = _money(executions)
    taken_quotes = Counter(done.opportunity.quote for done in executions)
    if taken_quotes:
        quote = max(sorted(taken_quotes), key=lambda q: taken_quotes[q])
    else:
        quote = next((m.quote for m in engine.state.markets.values()), "")
    orders = [order for done in executions for order in done.result.orders]
    unwound = sum(
        1
        for order in orders
        if order.filled > 0
        and (parsed := ids.parse(order.client_order_id)) is not None
        and parsed.purpose == "unwind"
    )
    start: dict[tuple[str, str], Decimal] = {(b.venue, b.asset): b.total for b in starting}
    balances: dict[str, dict[str, dict[str, str]]] = {}
    for key in sorted({*start, *((b.venue, b.asset) for b in portfolio.balances)}):
        balances.setdefault(key[0], {})[key[1]] = {
            "start": plain(start.get(key, ZERO)),
            "end": plain(portfolio.balance(*key).total),
        }
    drift = portfolio.drift_report().to_dict()["assets"]
    return {
        "strategy": engine.strategy.name,
        "seed": seed,
        "first": iso(recorder.first_ns) if recorder.first_ns is not None else None,
        "last": iso(recorder.last_ns) if recorder.last_ns is not None else None,
        "updates": engine.updates,
        "moments": recorder.moments,
        "opportunities_seen": engine.seen,
        "opportunities_taken": engine.taken,
        "rejected": dict(sorted(engine.rejected.items())),
        "outcomes": dict(sorted(engine.outcomes.items())),
        "orders": len(orders),
        "fills": sum(len(done.result.fills) for done in executions),
        "legs_unwound": unwound,
        "strategy_errors": engine.strategy_errors,
        "quote": quote,
        **money.get(quote, _Money()).to_dict(),
        "by_quote": {q: money[q].to_dict() for q in sorted(money)},
        "inventory_drift": {
            entry["asset"]: {k: v for k, v in entry.items() if k != "asset"} for entry in drift
        },
        "balances": balances,
    }


def summary_json(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=False) + "\n"


# ----- trades -------------------------------------------------------------------------


def trade_rows(executions: Sequence[Executed]) -> list[list[str]]:
    """``trades.csv`` rows (without the header), in time order."""
    rows: list[tuple[int, int, list[str]]] = []
    for done in executions:
        number = done.result.opportunity_id  # run-relative (BufferedJournal)
        for fill in done.result.fills:
            parsed = ids.parse(fill.client_order_id)
            purpose = parsed.purpose if parsed is not None else "entry"
            client_id = (
                str(ids.ClientOrderId(0, number, purpose, parsed.index))
                if parsed is not None
                else fill.client_order_id
            )
            rows.append(
                (
                    fill.timestamp_ms,
                    number,
                    [
                        iso(fill.timestamp_ms * 1_000_000),
                        fill.venue,
                        fill.symbol,
                        fill.side.value,
                        plain(fill.price),
                        plain(fill.amount),
                        plain(fill.fee),
                        fill.fee_currency,
                        client_id,
                        str(number),
                        purpose,
                    ],
                )
            )
    rows.sort(key=lambda row: (row[0], row[1]))  # stable: fill order within an opportunity
    return [row[2] for row in rows]


def trades_csv(executions: Sequence[Executed]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(TRADE_COLUMNS)
    writer.writerows(trade_rows(executions))
    return buffer.getvalue()


# ----- the HTML report ----------------------------------------------------------------


def report_html(document: Mapping[str, Any], recorder: Recorder, title: str) -> str:
    from arbot.report.html import page, table
    from arbot.report.svg import Markers, Series, histogram, line_chart

    quote = document["quote"]
    rows = [
        ("book updates", f"{document['updates']:,}"),
        ("moments", f"{document['moments']:,}"),
        ("opportunities seen", f"{document['opportunities_seen']:,}"),
        ("opportunities taken", f"{document['opportunities_taken']:,}"),
    ]
    rows += [(f"rejected: {r}", f"{n:,}") for r, n in document["rejected"].items()]
    rows += [(f"outcome: {o}", f"{n:,}") for o, n in document["outcomes"].items()]
    rows += [("orders", f"{document['orders']:,}"), ("fills", f"{document['fills']:,}")]
    rows.append(("legs unwound", f"{document['legs_unwound']:,}"))
    for key in ("pnl_net_quote", "fees_quote", "pnl_gross_quote", "turnover_quote"):
        rows.append((f"{key.removesuffix('_quote').replace('_', ' ')} ({quote})", document[key]))
    rows.append((f"max drawdown ({quote})", document["max_drawdown_quote"]))
    if document["first"]:
        rows += [("from (UTC)", document["first"]), ("to (UTC)", document["last"])]

    pnl: dict[str, list[tuple[float, float]]] = {}
    totals: dict[str, Decimal] = {}
    for done in recorder.executions:
        if done.result.outcome is Outcome.UNKNOWN:
            continue
        q = done.opportunity.quote
        totals[q] = totals.get(q, ZERO) + done.result.realised_pnl_quote
        pnl.setdefault(q, []).append((done.finished_ns / 1e9, float(totals[q])))
    pnl_chart = line_chart(
        "Cumulative realised PnL",
        [Series(f"PnL {q}", points, step=True) for q, points in sorted(pnl.items())],
        y_label="quote",
    )

    sections = [("", table(rows)), ("Realised PnL over time", pnl_chart)]
    for symbol in dict.fromkeys(symbol for _, symbol in recorder.spread_books):
        series = _spread_series(recorder, symbol)
        trades = [
            (done.decided_ns / 1e9, done.spread_bps)
            for done in recorder.executions
            if done.spread_bps is not None and symbol in done.opportunity.symbols
        ]
        chart = line_chart(
            f"{symbol}: bid on one venue / ask on the other - 1",
            [Series(name, points) for name, points in series.items()],
            markers=[Markers("trades", trades, colour="#000000")],
            y_label="bps",
        )
        sections.append((f"Spread between venues: {symbol}", chart))
    sections.append(
        (
            "Edge distribution",
            histogram("Expected edge of every opportunity seen", recorder.edges_bps, x_label="bps"),
        )
    )
    inventory: dict[str, list[tuple[float, float]]] = {}
    for ns, venue, asset, amount in recorder.inventory:
        inventory.setdefault(f"{asset} on {venue}", []).append((ns / 1e9, float(amount)))
    sections.append(
        (
            "Inventory per venue",
            line_chart(
                "Holdings (free + used) after each execution",
                [Series(name, points, step=True) for name, points in inventory.items()],
                y_label="base",
            ),
        )
    )
    return page(title, sections)


def _spread_series(recorder: Recorder, symbol: str) -> dict[str, list[tuple[float, float]]]:
    series: dict[str, list[tuple[float, float]]] = {}
    for ns, tops in recorder.spread_samples:
        here = [(venue, bid, ask) for venue, sym, bid, ask in tops if sym == symbol]
        for venue_a, bid, _ in here:
            for venue_b, _, ask in here:
                if venue_a != venue_b and ask > 0:
                    name = f"bid {venue_a} / ask {venue_b}"
                    series.setdefault(name, []).append((ns / 1e9, (bid / ask - 1.0) * 10_000.0))
    return series


def write_report(
    directory: Path, document: Mapping[str, Any], recorder: Recorder, *, title: str
) -> list[Path]:
    """Write ``summary.json``, ``trades.csv`` and ``report.html`` into ``directory``
    (created if missing), each atomically. Returns their paths."""
    from arbot.fileio import atomic_write_text

    directory.mkdir(parents=True, exist_ok=True)
    files = {
        "summary.json": summary_json(document),
        "trades.csv": trades_csv(recorder.executions),
        "report.html": report_html(document, recorder, title),
    }
    paths = []
    for name, text in files.items():
        path = directory / name
        atomic_write_text(path, text)
        paths.append(path)
    return paths


__all__ = [
    "TRADE_COLUMNS",
    "Executed",
    "Recorder",
    "iso",
    "plain",
    "report_html",
    "spread_bps",
    "summary",
    "summary_json",
    "trade_rows",
    "trades_csv",
    "write_report",
]
