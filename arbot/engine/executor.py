"""The executor: send an opportunity's legs, follow their fills, unwind uneven fills.

One call, :meth:`Executor.execute`, carries an approved opportunity to an outcome:

1. **Journal first.** Every leg becomes a limit order with a client order id from
   :mod:`arbot.engine.ids` (``arb{run}o{opportunity}l{leg}``), time in force IOC (FOK
   when ``risk.use_fok`` and the venue supports it). All legs are written ``pending`` in
   one committed transaction (with the opportunity row itself when the caller has not
   recorded it) *before* any is sent.
2. **Send all legs at once** (``asyncio.gather``). Each answer updates its journal row.

   * :class:`~arbot.venues.errors.OrderRejected` is final (``rejected``); so is a
     refusal of the permission guard (the order never left the process).
   * No answer within ``risk.order_timeout_s``, :class:`VenueUnavailable`, or any other
     error: the order **is never sent again**. Its fate is asked of the venue by client
     order id (``fetch_order``), polling with backoff for ``recovery_s`` (default twice
     the order timeout): found → its real status; never found → ``unknown``, left to
     reconciliation (:mod:`arbot.engine.reconcile`). A venue that stalls mid-order is
     recovered this way.
   * Clock skew is handled below, in :class:`~arbot.venues.ccxt_venue.CcxtVenue`: a
     request refused for its timestamp is re-signed after a time sync and sent once
     more (it was never executed).

3. **Fills** of every order that filled are fetched (``fetch_order_fills``, polled until
   they add up to the order's filled amount) and stored idempotently.
4. **Leg risk**, generic over any number of legs. From the fills, the net change of every
   asset other than the opportunity's quote, summed over venues, must be zero (see
   :mod:`arbot.engine._accounting` for the conventions: gross positions, fees as costs).
   Each non-flat asset is unwound toward flat with an IOC limit order on an
   ``ASSET/QUOTE`` market:

   * **where**: among venues listing that market (and, when the :class:`MarketState`
     knows balances, holding what the order needs; the venue that holds the position
     always qualifies), the one whose book can fill most of the amount within the price
     bound, then the best top of book, then the venue holding the position. Books come
     from the :class:`MarketState` when fresh (``max_book_age_ms``), else from a REST
     snapshot. A venue that refuses an unwind order is not tried again for that asset.
   * **price bound**: the limit is the entry's average price (volume-weighted price of
     the entry fills that created the position, in quote) moved by
     ``risk.max_unwind_loss_bps`` against us, snapped to the tick without loosening it.
     No unwind fill is ever worse than the bound.
   * **amount**: the residual rounded down to the market's lot; what the market cannot
     take (below its minimum amount or notional) is dust.
   * **retries**: at most ``risk.unwind_attempts`` rounds, sleeping ``unwind_backoff_ms``
     before the second round and doubling it each round after; the rounds stop when
     flat, when only dust is left, or when no venue can take an order.

5. **Outcome** (:class:`~arbot.engine._accounting.Outcome`, the strings of
   ``opportunities.outcome``): ``filled`` (flat without unwinding), ``unwound`` (flat
   thanks to unwind orders: partial + unwound or failed + unwound), ``stranded`` (a
   residual other than dust remains: logged with ``logger.error``), ``failed`` (nothing
   filled). The outcome and the realised PnL in the opportunity's quote (sell proceeds
   - buy costs - fees converted to quote; a stranded residual carried at cost) are
   stored on the opportunity row, last. When an order's fate or fills are still unknown
   the outcome is ``unknown`` and nothing is stored: reconciliation finishes it.

``trace(point, order)``, if given, is called at each step (``pending``, ``send``,
``answer``, ``updated``, ``fills``, ``outcome``): for benchmarks and crash tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import TYPE_CHECKING

from loguru import logger

from arbot.engine import ids
from arbot.engine._accounting import (
    Execution,
    Outcome,
    Summary,
    changes,
    cost_basis,
    excess,
    from_fill,
    is_dust,
    split_symbol,
    summarise,
)
from arbot.engine.journal import ENTRY, UNWIND, Journal
from arbot.keys.guard import KeyNotTradeOnly, TradingHalted
from arbot.model import (
    ZERO,
    Fill,
    Market,
    Opportunity,
    Order,
    OrderBook,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from arbot.store._types import utcnow
from arbot.venues.errors import OrderNotFound, OrderRejected, VenueError

if TYPE_CHECKING:
    from arbot.config import RiskConfig
    from arbot.strategy.context import MarketState
    from arbot.venues.base import Venue

Trace = Callable[[str, Order | None], None]
"""``(point, order)`` at each step of an execution; see the module docstring."""

_BPS = Decimal(10_000)
_POLL_FIRST_S = 0.02
_POLL_MAX_S = 1.0


@dataclass(frozen=True, slots=True)
class ExecutionResult:
    """How one opportunity's execution ended.

    ``residual`` maps ``(venue, asset)`` to what is left unhedged (dust included; the
    assets in ``dust`` are too small to trade); ``residual_quote`` values it at cost.
    ``fees_excluded`` are fees in currencies the execution could not value (left out
    of ``realised_pnl_quote``).
    """

    opportunity_id: int
    outcome: Outcome
    orders: tuple[Order, ...]
    fills: tuple[Fill, ...]
    realised_pnl_quote: Decimal
    residual: dict[tuple[str, str], Decimal]
    residual_quote: Decimal = ZERO
    dust: frozenset[str] = frozenset()
    fees_excluded: dict[str, Decimal] = field(default_factory=dict)


@dataclass(slots=True)
class _Run:
    """The state of one execution."""

    opportunity_id: int
    run_id: int
    quote: str
    orders: dict[str, Order] = field(default_factory=dict)
    purposes: dict[str, str] = field(default_factory=dict)
    fills: dict[str, list[Fill]] = field(default_factory=dict)
    unwinds: int = 0
    refused: dict[str, set[str]] = field(default_factory=dict)
    references: dict[str, Decimal | None] = field(default_factory=dict)

    def executions(self) -> list[Execution]:
        """Every fill, plus the unfilled-by-fills part of orders whose fills are missing."""
        out = [
            from_fill(f, unwind=self.purposes[cid] == UNWIND)
            for cid, fills in self.fills.items()
            for f in fills
        ]
        return out + _missing_parts(self)

    def missing_fills(self) -> bool:
        return any(
            order.filled > sum((f.amount for f in self.fills.get(cid, [])), ZERO)
            for cid, order in self.orders.items()
        )


class Executor:
    """Sends opportunities and handles their leg risk; see the module docstring.

    Parameters:
        venues: by name; every leg's venue must be here.
        journal: where orders, fills and outcomes are written (its ``run_id`` goes into
            client order ids).
        risk: ``[risk]`` settings (order timeout, FOK, unwind bound, attempts, backoff).
        markets: ``(venue, symbol) -> Market`` for every market an unwind may use.
        books: the engine's :class:`MarketState` (fresh books and balances for choosing
            the unwind venue); ``None``: REST snapshots.
        recovery_s: how long to poll for an order whose answer was lost (default
            ``2 * risk.order_timeout_s``).
        trace: called at each step (see the module docstring).
        sleep: the unwind backoff and polling sleep (a test may speed it up).
    """

    def __init__(
        self,
        venues: Mapping[str, Venue],
        journal: Journal,
        risk: RiskConfig,
        *,
        markets: Mapping[tuple[str, str], Market],
        books: MarketState | None = None,
        recovery_s: float | None = None,
        trace: Trace | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.venues = venues
        self.journal = journal
        self.risk = risk
        self.markets = markets
        self.books = books
        self.recovery_s = 2.0 * risk.order_timeout_s if recovery_s is None else recovery_s
        self._trace = trace or _no_trace
        self._sleep = sleep
        self._fok: dict[str, bool] = {}

    # ----- entry ----------------------------------------------------------------------

    async def execute(
        self, opportunity: Opportunity, opportunity_id: int | None = None
    ) -> ExecutionResult:
        """Send ``opportunity``'s legs and see it to an outcome.

        ``opportunity_id``: its row, when the caller recorded it already; ``None``: the
        opportunity is recorded (taken) together with its pending legs, in one commit.
        """
        for leg in opportunity.legs:
            if leg.venue not in self.venues:
                raise ValueError(f"leg on {leg.venue}: no such venue in the executor")
        run_id = self.journal.run_id

        def entry_orders(opp_id: int) -> list[Order]:
            return [
                Order(
                    ids.entry_id(run_id, opp_id, index),
                    leg.venue,
                    leg.symbol,
                    leg.side,
                    OrderType.LIMIT,
                    leg.amount,
                    leg.limit_price,
                    self._time_in_force(leg.venue),
                )
                for index, leg in enumerate(opportunity.legs)
            ]

        if opportunity_id is None:
            opportunity_id, orders = self.journal.record_taken(opportunity, entry_orders)
        else:
            orders = entry_orders(opportunity_id)
            self.journal.write_pending(orders, opportunity_id=opportunity_id, purpose=ENTRY)
        self._trace("pending", None)
        run = _Run(opportunity_id, run_id, opportunity.quote)
        await self._send(run, orders, ENTRY)
        await self._balance(run)
        return self._finish(run)

    async def resume(self, opportunity_id: int) -> ExecutionResult:
        """Unwind what an interrupted execution left (after :func:`reconcile` settled its
        orders and fills), then record its outcome. Raises ``ValueError`` while one of
        its orders is not final."""
        record = self.journal.opportunity(opportunity_id)
        journaled = self.journal.orders(opportunity_id=opportunity_id)
        open_orders = [j.order.client_order_id for j in journaled if not j.order.status.is_final]
        if open_orders:
            raise ValueError(
                f"opportunity {opportunity_id}: orders {', '.join(open_orders)} are not "
                "final; reconcile first"
            )
        run = _Run(opportunity_id, record.run_id or self.journal.run_id, record.quote)
        for entry in journaled:
            cid = entry.order.client_order_id
            run.orders[cid] = entry.order
            run.purposes[cid] = entry.purpose
            if entry.purpose == UNWIND:
                run.unwinds += 1
        for fill in self.journal.fills(opportunity_id=opportunity_id):
            run.fills.setdefault(fill.client_order_id, []).append(fill)
        await self._balance(run)
        return self._finish(run)

    def _time_in_force(self, venue: str) -> TimeInForce:
        if not self.risk.use_fok:
            return TimeInForce.IOC
        supported = self._fok.get(venue)
        if supported is None:
            probe = getattr(self.venues[venue], "supports_time_in_force", None)
            supported = self._fok[venue] = bool(probe(TimeInForce.FOK)) if probe else False
        return TimeInForce.FOK if supported else TimeInForce.IOC

    # ----- sending --------------------------------------------------------------------

    async def _send(self, run: _Run, orders: Sequence[Order], purpose: str) -> None:
        for order in orders:
            run.orders[order.client_order_id] = order
            run.purposes[order.client_order_id] = purpose
        if all(self.venues[order.venue].orders_at_once for order in orders):
            answers = [await self._place(order) for order in orders]  # each answers at once
        else:
            answers = await asyncio.gather(*(self._place(order) for order in orders))
        for answer in answers:
            run.orders[answer.client_order_id] = answer
        if all(self.venues[answer.venue].reads_at_once for answer in answers):
            fills = [await self._fills_of(answer) for answer in answers]  # nothing to overlap
        else:
            fills = await asyncio.gather(*(self._fills_of(answer) for answer in answers))
        for answer, got in zip(answers, fills, strict=True):
            if got:
                run.fills[answer.client_order_id] = got

    async def _place(self, order: Order) -> Order:
        """Send once; then the venue's answer, or its view found by polling.

        The request is never cancelled while the order's fate is open: a late answer
        is as good as a poll (whichever comes first wins), and aborting a request that
        the venue may already hold gains nothing.
        """
        sent_at = utcnow()
        self._trace("send", order)
        venue = self.venues[order.venue]
        if venue.orders_at_once:
            answer = await self._ask_at_once(venue, order)
        else:
            answer = await self._ask(venue, order)
        self._trace("answer", answer)
        self.journal.update_order(answer, sent_at=sent_at)
        self._trace("updated", answer)
        return answer

    async def _ask_at_once(self, venue: Venue, order: Order) -> Order:
        """A venue that answers within the call: no request task, no timeout to arm."""
        try:
            result = await venue.create_order(order)
        except Exception as exc:  # what the venue said, as a finished request would have
            answer = self._verdict(order, None, exc)
        else:
            answer = self._verdict(order, result, None)
        if answer is None or not answer.status.is_final:
            answer = await self._look_up(answer or order, None)
        return answer

    async def _ask(self, venue: Venue, order: Order) -> Order:
        """Send once and wait for the answer, at most ``order_timeout_s``; then poll."""
        request = asyncio.ensure_future(venue.create_order(order))
        try:
            done, _ = await asyncio.wait({request}, timeout=self.risk.order_timeout_s)
            if done:
                answer = self._answer_of(order, request)
            else:
                logger.warning(
                    "order {} on {}: no answer within {} s; asking the venue (never resent)",
                    order.client_order_id,
                    order.venue,
                    self.risk.order_timeout_s,
                )
                answer = None
            if answer is None or not answer.status.is_final:
                answer = await self._look_up(answer or order, None if done else request)
        finally:
            if not request.done():
                request.cancel()
                await asyncio.gather(request, return_exceptions=True)
            elif not request.cancelled():
                request.exception()  # retrieved: asyncio does not warn about it
        return answer

    @classmethod
    def _answer_of(cls, order: Order, request: asyncio.Future[Order]) -> Order | None:
        """The finished request's verdict: an order, a refusal, or ``None`` (uncertain)."""
        if request.cancelled():
            return None
        exc = request.exception()
        return cls._verdict(order, request.result() if exc is None else None, exc)

    @staticmethod
    def _verdict(order: Order, result: Order | None, exc: BaseException | None) -> Order | None:
        """A venue's answer to ``order``: the order it holds, a refusal, or ``None`` when
        its fate is uncertain (then it is looked up, never resent)."""
        if exc is None:
            assert result is not None
            return replace(result, client_order_id=order.client_order_id)
        if isinstance(exc, OrderRejected):
            logger.warning("order {} refused: {}", order.client_order_id, exc)
            return replace(order, status=OrderStatus.REJECTED)
        if isinstance(exc, KeyNotTradeOnly | TradingHalted):
            logger.error("order {} not sent: {}", order.client_order_id, exc)
            return replace(order, status=OrderStatus.REJECTED)
        logger.warning(
            "order {} on {}: {!r}; asking the venue (never resent)",
            order.client_order_id,
            order.venue,
            exc,
        )
        return None

    async def _look_up(self, order: Order, request: asyncio.Future[Order] | None) -> Order:
        """Poll the venue for ``order`` by client id until it is final or time runs out,
        while the original request (if still running) may still answer."""
        venue = self.venues[order.venue]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.recovery_s
        delay = _POLL_FIRST_S
        seen: Order | None = None
        while True:
            if request is not None and request.done():
                late = self._answer_of(order, request)
                request = None
                if late is not None:
                    if late.status.is_final:
                        return late
                    seen = late
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            poll = asyncio.ensure_future(venue.fetch_order(order))
            waiting: set[asyncio.Future[Order]] = {poll} if request is None else {poll, request}
            await asyncio.wait(waiting, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
            if not poll.done():
                poll.cancel()
                await asyncio.gather(poll, return_exceptions=True)
                continue  # a late answer (handled above) or the deadline
            exc = poll.exception()
            if exc is None:
                seen = replace(poll.result(), client_order_id=order.client_order_id)
                if seen.status.is_final:
                    return seen
            elif not isinstance(exc, OrderNotFound):
                logger.debug("looking up {}: {!r}", order.client_order_id, exc)
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            if request is not None:  # back off, but wake up for a late answer
                await asyncio.wait({request}, timeout=min(delay, remaining))
            else:
                await self._sleep(min(delay, remaining))
            delay = min(delay * 2, _POLL_MAX_S)
        logger.error(
            "order {} on {}: fate still unknown after {:.1f} s; reconciliation will settle it",
            order.client_order_id,
            order.venue,
            self.recovery_s,
        )
        return seen if seen is not None else replace(order, status=OrderStatus.UNKNOWN)

    async def _fills_of(self, order: Order) -> list[Fill]:
        if order.filled <= 0:
            return []
        venue = self.venues[order.venue]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.recovery_s
        delay = _POLL_FIRST_S
        fills: list[Fill] = []
        while True:
            try:
                if venue.reads_at_once:
                    fills = await venue.fetch_order_fills(order)
                else:
                    remaining = max(deadline - loop.time(), 0.001)
                    fills = await asyncio.wait_for(venue.fetch_order_fills(order), remaining)
            except (TimeoutError, VenueError) as exc:
                logger.debug("fills of {}: {}", order.client_order_id, exc)
            if sum((f.amount for f in fills), ZERO) >= order.filled:
                break
            remaining = deadline - loop.time()
            if remaining <= 0:
                logger.error(
                    "order {}: fills add up to less than its filled {} after {:.1f} s; "
                    "reconciliation will fetch them",
                    order.client_order_id,
                    order.filled,
                    self.recovery_s,
                )
                break
            await self._sleep(min(delay, remaining))
            delay = min(delay * 2, _POLL_MAX_S)
        fills = [replace(f, client_order_id=order.client_order_id) for f in fills]
        if fills:
            self.journal.record_fills(fills)
        self._trace("fills", order)
        return fills

    # ----- leg risk -------------------------------------------------------------------

    async def _balance(self, run: _Run) -> None:
        """Unwind non-flat assets toward flat, within the loss bound, with retries."""
        backoff_s = self.risk.unwind_backoff_ms / 1000.0
        for attempt in range(self.risk.unwind_attempts):
            if not self._tradeable_excess(run):
                return
            if attempt:
                await self._sleep(backoff_s * 2 ** (attempt - 1))
            orders = await self._unwind_orders(run)
            if not orders:
                return
            self.journal.write_pending(orders, opportunity_id=run.opportunity_id, purpose=UNWIND)
            self._trace("pending", None)
            await self._send(run, orders, UNWIND)
            for order in orders:
                if run.orders[order.client_order_id].status is OrderStatus.REJECTED:
                    asset = split_symbol(order.symbol)[0]
                    run.refused.setdefault(asset, set()).add(order.venue)

    def _tradeable_excess(self, run: _Run) -> dict[str, Decimal]:
        executions = run.executions()
        out = {}
        for asset, amount in excess(executions, run.quote).items():
            basis = self._reference(run, asset, amount > 0)
            if not self._is_dust(asset, amount, basis, run.quote):
                out[asset] = amount
        return out

    def _reference(self, run: _Run, asset: str, long: bool) -> Decimal | None:
        """The entry's average price of ``asset`` in quote: the unwind bound's anchor."""
        key = f"{asset}:{long}"
        if key not in run.references:
            entries = [ex for ex in run.executions() if not ex.unwind]
            run.references[key] = cost_basis(entries, run.quote, asset, long)
        return run.references[key]

    def _unwind_markets(self, asset: str, quote: str) -> list[Market]:
        symbol = f"{asset}/{quote}"
        return [
            market
            for (venue, name), market in self.markets.items()
            if name == symbol and venue in self.venues
        ]

    def _is_dust(self, asset: str, amount: Decimal, basis: Decimal | None, quote: str) -> bool:
        """Too small for every ``asset/quote`` market (no market at all: not dust)."""
        return is_dust(self._unwind_markets(asset, quote), amount, basis)

    async def _unwind_orders(self, run: _Run) -> list[Order]:
        bps = self.risk.max_unwind_loss_bps
        orders = []
        holders = _holders(run.executions())
        for asset, amount in self._tradeable_excess(run).items():
            side = Side.SELL if amount > 0 else Side.BUY
            reference = self._reference(run, asset, amount > 0)
            if reference is None:
                logger.error(
                    "opportunity {}: no entry price for {} in {}; cannot bound an unwind",
                    run.opportunity_id,
                    asset,
                    run.quote,
                )
                continue
            bound = reference * ((_BPS - bps) / _BPS if side is Side.SELL else (_BPS + bps) / _BPS)
            refused = run.refused.setdefault(asset, set())
            holder = holders.get(asset, "")
            candidates = []
            for market in self._unwind_markets(asset, run.quote):
                if market.venue in refused:
                    continue
                size = market.round_amount(abs(amount))
                limit = market.round_limit_price(bound, side)
                if market.order_problem(size, limit) is not None:
                    continue
                if market.venue != holder and not self._can_afford(market, side, size, limit):
                    continue
                candidates.append((market, size, limit))
            if not candidates:
                continue
            books = await asyncio.gather(*(self._book(m.venue, m.symbol) for m, _, _ in candidates))
            best = max(
                zip(candidates, books, strict=True),
                key=lambda pair: _unwind_score(pair[0], pair[1], side, holder),
            )
            market, size, limit = best[0]
            number = run.unwinds
            run.unwinds += 1
            orders.append(
                Order(
                    ids.unwind_id(run.run_id, run.opportunity_id, number),
                    market.venue,
                    market.symbol,
                    side,
                    OrderType.LIMIT,
                    size,
                    limit,
                    TimeInForce.IOC,
                )
            )
            logger.warning(
                "opportunity {}: unwinding {} {} {} on {} at {} or better (entry {})",
                run.opportunity_id,
                side.value,
                size,
                asset,
                market.venue,
                limit,
                reference,
            )
        return orders

    def _can_afford(self, market: Market, side: Side, size: Decimal, limit: Decimal) -> bool:
        """``False`` only when the market state knows the balance and it is short."""
        if self.books is None:
            return True
        asset, need = (
            (market.base, size)
            if side is Side.SELL
            else (market.quote, size * limit * (1 + market.taker_fee))
        )
        held = self.books.balances.get((market.venue, asset))
        return held is None or held >= need

    async def _book(self, venue: str, symbol: str) -> OrderBook | None:
        state = self.books
        if state is not None:
            book = state.books.get((venue, symbol))
            if book is not None and book.received_ns:
                age_ms = (state.clock() - book.received_ns) / 1e6
                if age_ms <= state.max_book_age_ms:
                    return book
        try:
            return await asyncio.wait_for(
                self.venues[venue].fetch_order_book(symbol, 20), self.risk.order_timeout_s
            )
        except (TimeoutError, VenueError, ValueError) as exc:
            logger.warning("{} {} book for an unwind: {!r}", venue, symbol, exc)
            return None

    # ----- outcome --------------------------------------------------------------------

    def _finish(self, run: _Run) -> ExecutionResult:
        all_fills = [f for fills in run.fills.values() for f in fills]
        summary = summarise(
            all_fills,
            run.quote,
            unwind_ids=[cid for cid, p in run.purposes.items() if p == UNWIND],
            extra=_missing_parts(run),
            dust=lambda a, n, b: self._is_dust(a, n, b, run.quote),
        )
        settled = all(o.status.is_final for o in run.orders.values()) and not run.missing_fills()
        outcome = summary.outcome if settled else Outcome.UNKNOWN
        residual_quote = _residual_value(run, summary)
        if settled:
            self.journal.record_outcome(
                run.opportunity_id, outcome.value, summary.realised_pnl_quote
            )
        self._trace("outcome", None)
        _report(run, outcome, summary)
        return ExecutionResult(
            opportunity_id=run.opportunity_id,
            outcome=outcome,
            orders=tuple(run.orders.values()),
            fills=tuple(all_fills),
            realised_pnl_quote=summary.realised_pnl_quote,
            residual=summary.residual,
            residual_quote=residual_quote,
            dust=summary.dust,
            fees_excluded=summary.fees_excluded,
        )


def _no_trace(point: str, order: Order | None) -> None:
    return None


def _missing_parts(run: _Run) -> list[Execution]:
    """Executions of orders whose fills could not be fetched (the unfilled-by-fills part)."""
    out = []
    for cid, order in run.orders.items():
        got = sum((f.amount for f in run.fills.get(cid, [])), ZERO)
        if order.filled > got:
            price = order.average_price or order.price or ZERO
            out.append(
                Execution(
                    order.venue,
                    order.symbol,
                    order.side,
                    order.filled - got,
                    price,
                    run.purposes[cid] == UNWIND,
                )
            )
    return out


def _holders(executions: list[Execution]) -> dict[str, str]:
    """For each asset, the venue whose own change is largest in size (holds the position)."""
    best: dict[str, tuple[Decimal, str]] = {}
    for (venue, asset), change in changes(executions).items():
        if asset not in best or abs(change) > best[asset][0]:
            best[asset] = (abs(change), venue)
    return {asset: venue for asset, (_, venue) in best.items()}


def _unwind_score(
    candidate: tuple[Market, Decimal, Decimal], book: OrderBook | None, side: Side, holder: str
) -> tuple[Decimal, float, bool]:
    market, size, limit = candidate
    if book is None:
        return (ZERO, 0.0, market.venue == holder)
    fillable = min(Decimal(repr(book.depth(side, float(limit)))), size)
    top = book.best_bid if side is Side.SELL else book.best_ask
    price = 0.0 if top is None else (top if side is Side.SELL else -top)
    return (fillable, price, market.venue == holder)


def _residual_value(run: _Run, summary: Summary) -> Decimal:
    entries = [ex for ex in run.executions() if not ex.unwind]
    total = ZERO
    for (_, asset), amount in summary.residual.items():
        basis = cost_basis(entries, run.quote, asset, amount > 0)
        if basis is not None:
            total += abs(amount) * basis
    return total


def _report(run: _Run, outcome: Outcome, summary: Summary) -> None:
    if outcome is Outcome.STRANDED:
        held = ", ".join(
            f"{amount} {asset} on {venue}" for (venue, asset), amount in summary.residual.items()
        )
        logger.error(
            "opportunity {} STRANDED: residual position {} could not be unwound within the "
            "bound; realised PnL {} {}",
            run.opportunity_id,
            held,
            summary.realised_pnl_quote,
            run.quote,
        )
    elif outcome is Outcome.UNWOUND:
        logger.warning(
            "opportunity {} unwound: flat again; realised PnL {} {}",
            run.opportunity_id,
            summary.realised_pnl_quote,
            run.quote,
        )
    elif outcome is Outcome.UNKNOWN:
        logger.error(
            "opportunity {}: an order's fate or fills are unknown; outcome left to reconciliation",
            run.opportunity_id,
        )
