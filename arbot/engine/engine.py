"""The engine: book updates in, opportunities judged and executed, the same in every mode.

``Engine.on_update`` is the hot path. It applies a :class:`BookUpdate` to the
:class:`MarketState`, runs the strategy when the book is one it asked for, and hands
each opportunity to :meth:`Engine.consider`: risk decides (a named reason is stored for
a rejection), an approved opportunity is executed in its own task, and when the
execution ends the risk books are settled, the fills move the portfolio and reach the
strategy's ``on_fill``. The daemon (live and paper) and the backtest build the same
engine around different venues and clocks (NautilusTrader's "one kernel, two shells").

A strategy that raises is not allowed to stop the engine: the error is logged (the
first time and then every 1,000th), counted in the status, and the update is skipped,
as Freqtrade's ``strategy_safe_wrapper`` does.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable, Sequence
from decimal import Decimal

from loguru import logger

from arbot.engine._accounting import Outcome
from arbot.engine.executor import ExecutionResult, Executor
from arbot.engine.journal import Journal
from arbot.engine.portfolio import Portfolio
from arbot.engine.risk import RiskEngine
from arbot.feeds.book_feed import BookUpdate
from arbot.model import ZERO, Leg, Opportunity
from arbot.strategy.base import Strategy
from arbot.strategy.context import MarketState


class Engine:
    """Feeds -> state -> strategy -> risk -> executor; see the module docstring."""

    def __init__(
        self,
        *,
        strategy: Strategy,
        state: MarketState,
        risk: RiskEngine,
        executor: Executor,
        journal: Journal,
        portfolio: Portfolio,
    ) -> None:
        self.strategy = strategy
        self.state = state
        self.ctx = state.context()
        self.risk = risk
        self.executor = executor
        self.journal = journal
        self.portfolio = portfolio
        self.wanted = frozenset(strategy.books(state.markets))
        self.accepting = True
        self.updates = 0
        self.seen = 0
        self.taken = 0
        self.rejected: Counter[str] = Counter()
        self.outcomes: Counter[str] = Counter()
        self.pnl: dict[str, Decimal] = {}
        self.fills = 0
        self.strategy_errors = 0
        self.results: list[ExecutionResult] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    # ----- the hot path ----------------------------------------------------------------

    def start(self) -> None:
        """Call once markets and balances are loaded, before the first update."""
        self.wanted = frozenset(self.strategy.books(self.state.markets))
        self.strategy.on_start(self.ctx)

    def on_update(self, update: BookUpdate) -> None:
        self.state.apply(update)
        self.updates += 1
        if not self.accepting or (update.venue, update.symbol) not in self.wanted:
            return
        for opportunity in self._on_book(update):
            self.consider(opportunity)

    def on_moment(self, updates: Sequence[BookUpdate]) -> None:
        """Updates received at the same instant (a backtest's *moment*): all are applied
        before the strategy runs, then it runs once per update it asked for; an
        opportunity with the same legs as one already found in this moment is not
        considered again (two venues' books crossing each other are one opportunity,
        found from either side)."""
        apply = self.state.apply
        for update in updates:
            apply(update)
        self.updates += len(updates)
        if not self.accepting:
            return
        found: set[tuple[Leg, ...]] = set()
        for update in updates:
            if (update.venue, update.symbol) not in self.wanted:
                continue
            for opportunity in self._on_book(update):
                if opportunity.legs not in found:
                    found.add(opportunity.legs)
                    self.consider(opportunity)

    def _on_book(self, update: BookUpdate) -> list[Opportunity]:
        try:
            return self.strategy.on_book(update, self.ctx)
        except Exception as exc:  # a plugin's bug must not stop trading on other books
            self.strategy_errors += 1
            if self.strategy_errors % 1000 == 1:
                logger.opt(exception=exc).error(
                    "strategy {} failed on {} {} ({} errors so far)",
                    self.strategy.name,
                    update.venue,
                    update.symbol,
                    self.strategy_errors,
                )
            return []

    def consider(self, opportunity: Opportunity) -> asyncio.Task[None] | None:
        """Judge one opportunity; start its execution if risk approves. Returns the task."""
        self.seen += 1
        if not self.accepting:
            return None
        verdict, reservation = self.risk.admit(opportunity)
        if reservation is None:
            reason = verdict.reason.value if verdict.reason is not None else "rejected"
            self.rejected[reason] += 1
            self.journal.record_opportunity(opportunity, taken=False, reason=reason)
            return None
        self.taken += 1
        task = asyncio.get_running_loop().create_task(
            self._execute(opportunity, reservation), name=f"execute-{self.taken}"
        )
        self._tasks.add(task)
        self._idle.clear()
        task.add_done_callback(self._done)
        return task

    # ----- executions ------------------------------------------------------------------

    async def _execute(self, opportunity: Opportunity, reservation: object) -> None:
        from arbot.engine.risk import Reservation

        assert isinstance(reservation, Reservation)
        try:
            result = await self.executor.execute(opportunity)
        except Exception as exc:
            # Orders may be out: the journal has them; reconciliation settles them.
            logger.opt(exception=exc).error(
                "execution of a {} opportunity failed; the journal keeps its orders "
                "for reconciliation",
                opportunity.strategy,
            )
            self.risk.settle(reservation, Outcome.UNKNOWN.value)
            self.outcomes[Outcome.UNKNOWN.value] += 1
            return
        self.results.append(result)
        self.outcomes[result.outcome.value] += 1
        self.risk.settle(
            reservation,
            result.outcome.value,
            realized_pnl=result.realised_pnl_quote,
            residual_quote=result.residual_quote,
        )
        if result.outcome is not Outcome.UNKNOWN:
            quote = opportunity.quote
            self.pnl[quote] = self.pnl.get(quote, ZERO) + result.realised_pnl_quote
        self._apply_fills(result)

    def _apply_fills(self, result: ExecutionResult) -> None:
        for fill in result.fills:
            market = self.state.markets.get((fill.venue, fill.symbol))
            if market is None or not self.portfolio.apply_fill(fill, market):
                continue
            self.fills += 1
            try:
                self.strategy.on_fill(fill, self.ctx)
            except Exception as exc:
                self.strategy_errors += 1
                logger.opt(exception=exc).error("strategy {} on_fill failed", self.strategy.name)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not self._tasks:
            self._idle.set()
        if not task.cancelled() and task.exception() is not None:
            logger.opt(exception=task.exception()).error("execution task failed")

    # ----- control ---------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    def stop_accepting(self) -> None:
        """No new opportunity is taken from now on; executions under way continue."""
        self.accepting = False

    async def drain(self, timeout: float) -> bool:
        """Wait for executions under way to finish; ``False`` if some did not in time."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def tasks(self) -> Iterable[asyncio.Task[None]]:
        return tuple(self._tasks)
