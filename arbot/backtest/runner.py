"""The backtest: the daemon's engine on replayed books, driven by discrete events.

:class:`Backtest` builds what :class:`~arbot.engine.daemon.Daemon` builds (the
configured strategy, a :class:`MarketState`, a journal run in the store with mode
``backtest``, a :class:`RiskEngine` in ``backtest`` mode, the real :class:`Executor`, a
:class:`Portfolio`, one :class:`Engine`), with two differences that matter: the clock
is a :class:`~arbot.backtest.clock.ReplayClock` and the venues are
:class:`~arbot.backtest.venue.BacktestVenue`\\ s. Two that do not change a result:
the journal writes the daemon's rows in bulk
(:class:`~arbot.backtest.journal.BufferedJournal`), and the kill switch lives in
memory (a halt in the store does not stop a backtest, and a backtest's trip halts
nothing else).

The event loop
--------------
The engine runs on a :class:`~arbot.backtest.clock.ReplayLoop`: asyncio whose time is
the replay clock and which never sleeps. Whenever every task is blocked, the loop asks
the backtest what happens next; the backtest takes the earliest of

1. the next **moment** of the replay (:mod:`arbot.backtest.replay`): the clock moves to
   its visible time, :meth:`Engine.on_moment` applies its updates to the market state
   and runs the strategy (risk decides synchronously; an approved opportunity becomes
   an execution task);
2. the next **venue event** (an order or cancel reaching a venue, an answer coming
   back), in the order scheduled among equal times;
3. the next **asyncio timer** (the executor's order timeout, polling and unwind
   backoff, which use ``asyncio.wait``/``wait_for``/``sleep``: replay time);

moments before venue events before timers at equal times, so an order arriving at
``t`` meets the book after every update visible at ``t``. After a moment that started
an execution, or after a venue event, the loop runs every task that became runnable
until all are blocked again, and only then is the clock moved on; moments that start
nothing are applied back to back (up to 1,024 before the loop looks at its tasks: a
Ctrl-C cancels the run promptly). When the replay has no moment, no venue event and
no timer left, the run is over (executions still under way at the end of the data
carry on in replay time against the last books until they finish).

Determinism: the order of everything above is fixed by the data, the settings and the
seed (latency draws); nothing reads the wall clock, so results are byte-identical from
run to run. (The store's rows carry wall-clock ``sent_at``/``updated_at`` and row ids;
the result files do not use them.)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loguru import logger

from arbot.backtest.clock import EventQueue, ReplayClock, ReplayLoop
from arbot.backtest.columnar import ColumnarMoments
from arbot.backtest.journal import BufferedJournal
from arbot.backtest.latency import Latency
from arbot.backtest.replay import Moment, PlainMoments, moments, updates
from arbot.backtest.results import Executed, Recorder, spread_bps, summary, write_report
from arbot.backtest.venue import BacktestVenue
from arbot.engine.executor import ExecutionResult, Executor
from arbot.engine.journal import Journal
from arbot.errors import ArbotError, ConfigError
from arbot.model import Balance, Opportunity
from arbot.venues.fills import FeeAsset

if TYPE_CHECKING:
    from arbot.config import BacktestVenueConfig, Settings
    from arbot.engine.engine import Engine
    from arbot.engine.portfolio import Portfolio
    from arbot.store import Store
    from arbot.strategy.base import Strategy
    from arbot.strategy.context import MarketState

Progress = Callable[[int], None]
"""Called now and then with the number of book updates replayed so far."""

_PROGRESS_EVERY = 4096
_BATCH = 1024  # moments applied back to back before the loop looks at its tasks again
_FLUSH_ROWS = 5000  # journal rows kept in memory before a bulk write (when no execution runs)


Done = Callable[[Opportunity, ExecutionResult, int, float | None], None]
"""``(opportunity, result, decided_ns, spread_bps at decision)`` of a finished execution."""


class _RecordingExecutor(Executor):
    """The executor, reporting each finished execution with its replay times."""

    def __init__(self, *args: Any, clock: ReplayClock, done: Done, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.clock = clock
        self.done = done

    async def execute(
        self, opportunity: Opportunity, opportunity_id: int | None = None
    ) -> ExecutionResult:
        assert self.books is not None
        decided = self.clock()
        spread = spread_bps(self.books.books, opportunity)
        result = await super().execute(opportunity, opportunity_id)
        self.done(opportunity, result, decided, spread)
        return result


@dataclass
class BacktestResult:
    """What :meth:`Backtest.run` returns: the summary document and where things went."""

    summary: dict[str, Any]
    run_id: int
    recorder: Recorder
    files: list[Path]


class Backtest:
    """One backtest run; build it, then call :meth:`run` (synchronous: it owns its loop).

    Parameters:
        settings: strategy, risk, venues (balances, fees) and ``[backtest]``.
        data: the dataset folder (``arbot record`` / ``arbot data import``).
        start_ns, end_ns: replay ``start_ns <= received_ns < end_ns`` only.
        seed: overrides ``[backtest] seed``.
        store: the book of record; default: ``settings.database_url`` (closed at the end).
        progress: called with the updates replayed so far, every few thousand.
        report: a folder for ``summary.json``, ``trades.csv`` and ``report.html``.
        screen: use the strategy's screen when it has one and every data latency is
            constant (:mod:`arbot.backtest.columnar`); ``False`` applies every moment in
            full. The results are the same; only the speed differs.
    """

    # Built by run(), before the replay starts:
    clock: ReplayClock
    state: MarketState
    journal: BufferedJournal
    venues: dict[str, BacktestVenue]
    starting: list[Balance]
    portfolio: Portfolio
    engine: Engine

    def __init__(
        self,
        settings: Settings,
        data: Path | str,
        *,
        start_ns: int | None = None,
        end_ns: int | None = None,
        seed: int | None = None,
        store: Store | None = None,
        progress: Progress | None = None,
        report: Path | None = None,
        screen: bool = True,
    ) -> None:
        self.settings = settings
        self.data = Path(data)
        self.start_ns = start_ns
        self.end_ns = end_ns
        self.seed = settings.backtest.seed if seed is None else seed
        self._store = store
        self._owns_store = store is None
        self.progress = progress
        self.report = report
        self.use_screen = screen
        self.recorder = Recorder()
        self.books: list[tuple[str, str]] = []
        self.events = EventQueue()
        self._source: ColumnarMoments | PlainMoments = PlainMoments(iter(()))
        self._done: asyncio.Future[None] | None = None
        self._reported = 0
        self._stopping = False

    # ----- building -------------------------------------------------------------------

    def _check(self) -> None:
        settings = self.settings
        if not self.data.is_dir():
            raise ArbotError(
                f"{self.data}: no such dataset folder; record one with arbot record or "
                "import one with arbot data import"
            )
        if not settings.venues:
            raise ConfigError("no [venues] configured; the backtest replays their books")
        unknown = sorted(set(settings.backtest.venues) - set(settings.venues))
        if unknown:
            raise ConfigError(
                f"backtest.venues.{unknown[0]}: not a configured venue (configured: "
                f"{', '.join(settings.venues)})"
            )
        for name, grid in settings.backtest.venues.items():
            extra = sorted(set(grid.markets) - set(settings.venues[name].symbols))
            if extra:
                raise ConfigError(
                    f"backtest.venues.{name}.markets: {extra[0]} is not in venues.{name}.symbols"
                )
        if self.start_ns is not None and self.end_ns is not None and self.start_ns >= self.end_ns:
            raise ArbotError("the replay window is empty: --from must be before --to")

    def _build(self) -> None:
        from arbot.backtest.markets import build_markets
        from arbot.engine.engine import Engine
        from arbot.engine.kill_switch import KillSwitch
        from arbot.engine.portfolio import Portfolio
        from arbot.engine.risk import RiskEngine
        from arbot.store import Store
        from arbot.strategy.context import MarketState
        from arbot.strategy.loader import load_strategy

        settings = self.settings
        self._check()
        strategy = load_strategy(
            settings.strategy.name, settings.strategy.params, settings.strategy.path
        )
        configured = [(v, s) for v, c in settings.venues.items() for s in c.symbols]
        markets = build_markets(settings, configured, self.data)
        wanted = set(strategy.books(markets))
        self.books = [key for key in configured if key in wanted]
        if not self.books:
            raise ArbotError(
                f"strategy {strategy.name!r} asked for no book of the configured venues; "
                "check [venues] symbols and the strategy's params"
            )
        latency = {
            name: Latency.from_config(
                self._venue_settings(name).data_latency, seed=self.seed, venue=name, kind="data"
            )
            for name in settings.venues
        }
        self._source = source = self._moment_source(strategy, latency)
        first = source.peek()
        if first is None:
            books = ", ".join(f"{v} {s}" for v, s in self.books)
            raise ArbotError(
                f"{self.data}: no book updates of {books} in the selected time range; "
                "check the venue names (they must match the dataset's) and --from/--to"
            )
        self.clock = clock = ReplayClock(first.ns)
        self.state = state = MarketState(
            markets.values(), clock=clock, max_book_age_ms=settings.risk.max_book_age_ms
        )
        if self._store is None:
            self._store = Store(settings.database_url)
        # Built before its run row exists, so a failure (or Ctrl-C) after the row is
        # written always finds the journal to mark the run failed.
        self.journal = journal = BufferedJournal(self._store, 0, seen=self.recorder.seen)
        journal.run_id = Journal.start_run(
            self._store, mode="backtest", strategy=strategy.name, config=settings.masked()
        ).run_id
        self.starting = [
            Balance(name, asset, amount)
            for name, config in settings.venues.items()
            for asset, amount in config.balances.items()
        ]
        fee_asset = FeeAsset(settings.backtest.fee_asset)
        for name, config in settings.venues.items():
            if config.taker_fee is None:
                logger.warning(
                    "venues.{}.taker_fee is not set: the backtest charges no fee there", name
                )
        self.venues = {
            name: BacktestVenue(
                name,
                markets={s: m for (v, s), m in markets.items() if v == name},
                balances=config.balances,
                state=state,
                clock=clock,
                events=self.events,
                order_latency=Latency.from_config(
                    self._venue_settings(name).order_latency,
                    seed=self.seed,
                    venue=name,
                    kind="order",
                ),
                fee_asset=fee_asset,
                id_prefix=f"bt{journal.run_id}-",
            )
            for name, config in settings.venues.items()
        }
        self.portfolio = Portfolio(state, self.starting)
        risk = RiskEngine(settings.risk, state, mode="backtest", kill_switch=KillSwitch(None))
        executor = _RecordingExecutor(
            self.venues,
            journal,
            settings.risk,
            markets=state.markets,
            books=state,
            clock=clock,
            done=self._executed,
        )
        self.engine = Engine(
            strategy=strategy,
            state=state,
            risk=risk,
            executor=executor,
            journal=journal,
            portfolio=self.portfolio,
        )
        self.engine.start()
        bases = dict.fromkeys((v, markets[(v, s)].base) for v, s in self.books)
        self.recorder.watch(self.books, bases)
        self.recorder.holdings(clock(), self.portfolio)
        if isinstance(source, ColumnarMoments):
            source.attach(state, clock, self.recorder, strategy.screen(self.engine.ctx))
        logger.debug("backtest replay: {}", "screened" if source.screened else "every update")

    def _moment_source(
        self, strategy: Strategy, latency: dict[str, Latency]
    ) -> ColumnarMoments | PlainMoments:
        from arbot.strategy.base import Strategy

        if (
            self.use_screen
            and type(strategy).screen is not Strategy.screen
            and all(model.constant for model in latency.values())
        ):
            return ColumnarMoments(
                self.data,
                self.books,
                shifts={venue: model.sample_ns() for venue, model in latency.items()},
                start_ns=self.start_ns,
                end_ns=self.end_ns,
            )
        return PlainMoments(
            moments(
                updates(
                    self.data,
                    self.books,
                    start_ns=self.start_ns,
                    end_ns=self.end_ns,
                    data_latency=latency,
                )
            )
        )

    def _venue_settings(self, name: str) -> BacktestVenueConfig:
        from arbot.config import BacktestVenueConfig

        return self.settings.backtest.venues.get(name) or BacktestVenueConfig()

    # ----- running --------------------------------------------------------------------

    def run(self) -> BacktestResult:
        """Replay everything, then write the report (if asked) and finish the run row."""
        try:
            self._build()
            with asyncio.Runner(loop_factory=self._loop) as runner:
                runner.run(self._main())
            if isinstance(self._source, ColumnarMoments):
                self._source.finish()
            engine = self.engine
            if engine.in_flight:  # pragma: no cover - a blocked execution is a bug
                logger.error("{} execution(s) never finished", engine.in_flight)
            document = summary(engine, self.portfolio, self.recorder, self.starting, seed=self.seed)
            files: list[Path] = []
            if self.report is not None:
                files = write_report(
                    self.report,
                    document,
                    self.recorder,
                    title=f"arbot backtest: {engine.strategy.name}",
                )
            self.journal.finish_run("finished")
            return BacktestResult(document, self.journal.run_id, self.recorder, files)
        except BaseException:
            journal = getattr(self, "journal", None)
            if journal is not None and journal.run_id:
                with contextlib.suppress(Exception):  # the original error matters more
                    journal.finish_run("failed")
            raise
        finally:
            if self._owns_store and self._store is not None:
                self._store.close()

    def _loop(self) -> ReplayLoop:
        return ReplayLoop(self.clock, self._on_idle)

    async def _main(self) -> None:
        self._done = asyncio.get_running_loop().create_future()
        try:
            await self._done
        finally:  # done, or cancelled (Ctrl-C): replay no more moments
            self._stopping = True
            self.engine.stop_accepting()
        if self.progress is not None:
            self.progress(self.engine.updates)

    def _on_idle(self, timer_ns: int | None) -> bool:
        """Fire what is due before the loop's next timer (see the module docstring)."""
        engine = self.engine
        events = self.events
        if not engine.in_flight and self.journal.pending_rows >= _FLUSH_ROWS:
            self.journal.flush()
        taken = engine.taken
        source = self._source
        fired = False
        batch = _BATCH
        while True:
            if source.screened and not self._stopping and not engine.in_flight and not events:
                skipped = source.skip(timer_ns)
                if skipped:  # moments the strategy cannot act on: counted, not built
                    engine.updates += skipped
                    self._progress_tick()
                    fired = True
                    batch -= 1
                    if not batch:
                        break
                    continue
            moment = None if self._stopping else source.peek()
            event_ns = events.next_ns()
            if moment is not None and (event_ns is None or moment.ns <= event_ns):
                if timer_ns is not None and moment.ns > timer_ns:
                    break
                self._apply(moment)
                source.pop()
                fired = True
                batch -= 1
                if engine.taken != taken or not batch:
                    break  # executions to start (or a cancellation to see) first
                continue
            if event_ns is not None and (timer_ns is None or event_ns <= timer_ns):
                ns, callback = events.pop()
                self.clock.advance_to(ns)
                callback()
                fired = True
            break
        if fired or timer_ns is not None or len(events):
            return fired
        assert self._done is not None
        if self._done.done():
            return False
        self._done.set_result(None)  # nothing left to replay or to wait for
        return True

    def _apply(self, moment: Moment) -> None:
        self.clock.advance_to(moment.ns)
        self.engine.on_moment(moment.updates)
        self.recorder.moment(moment.ns, self.state.books)
        self._progress_tick()

    def _progress_tick(self) -> None:
        progress = self.progress
        if progress is not None and self.engine.updates - self._reported >= _PROGRESS_EVERY:
            self._reported = self.engine.updates
            progress(self._reported)

    def _executed(
        self, opportunity: Opportunity, result: ExecutionResult, decided: int, spread: float | None
    ) -> None:
        now = self.clock()
        self.recorder.executions.append(Executed(opportunity, result, decided, now, spread))
        # The engine applies the fills to the portfolio as soon as this returns, in the
        # same step: read the holdings after that.
        asyncio.get_running_loop().call_soon(self.recorder.holdings, now, self.portfolio)


__all__ = ["Backtest", "BacktestResult", "Progress"]
