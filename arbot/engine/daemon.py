"""``arbot run``: the long-running service around the :class:`~arbot.engine.engine.Engine`.

Start-up, in order, each step refusing to go on with one clear line on failure:

1. open the store; load the strategy plugin and validate its params;
2. build venues: live → :class:`CcxtVenue` with the keystore's key behind a
   :class:`PermissionGuard`; paper → :class:`PaperVenue` (live books, simulated account,
   no keys);
3. load markets and balances; **live: prove every key trade-only** (a key that can
   withdraw or transfer, or whose rights cannot be proven, stops the start);
4. start a run in the journal; live: reconcile the journal with every venue;
5. risk engine, kill switch (store-backed, obeyed across processes), executor, engine;
6. one :class:`BookFeed` per book the strategy asked for.

Then everything runs as tasks of one :class:`asyncio.TaskGroup` (structured concurrency,
hypercorn's model): the feeds (each retries on its own; an unexpected error restarts it
after a backoff), the kill switch watch, the permission re-check (live), the balance
refresh (live), the store heartbeat, the ops endpoint, the progress callback. A shutdown
trigger (SIGTERM/SIGINT, ``--duration``, a permission-guard halt) raises
:class:`_Shutdown` inside the group, which cancels the rest.

Shutdown is staged and bounded: stop taking opportunities, cancel open orders on every
venue, wait for executions under way to settle (their unwinds included), cancel again,
finish the run row, close venues and the store. SIGHUP (or ``arbot reload``) re-reads
strategy params and risk limits from the config file without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from loguru import logger

from arbot.errors import ArbotError
from arbot.ops.status import FeedStatus, Status

if TYPE_CHECKING:
    from arbot.config import Settings
    from arbot.engine.engine import Engine
    from arbot.engine.kill_switch import KillSwitch
    from arbot.engine.portfolio import Portfolio
    from arbot.feeds.book_feed import BookFeed
    from arbot.keys.guard import PermissionGuard
    from arbot.model import Balance
    from arbot.store import Store
    from arbot.venues.base import Venue

Mode = Literal["paper", "live"]
FEED_DEPTH = 20
SHUTDOWN_STEP_S = 10.0


class _Shutdown(Exception):
    """Raised inside the task group to stop every task (the trigger fired)."""


@dataclass
class RunSummary:
    run_id: int
    mode: str
    status: str  # finished | halted
    duration_s: float
    updates: int
    seen: int
    taken: int
    rejected: dict[str, int]
    outcomes: dict[str, int]
    fills: int
    pnl: dict[str, str]
    database: str
    open_orders_cancelled: int
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Daemon:
    """One run of the trading service; build it, then ``await run(stop)``."""

    def __init__(
        self,
        settings: Settings,
        *,
        mode: Mode,
        config_path: Path | None = None,
        progress: Callable[[Status], None] | None = None,
        progress_interval_s: float = 0.5,
    ) -> None:
        self.settings = settings
        self.mode = mode
        self.config_path = config_path
        self.progress = progress
        self.progress_interval_s = progress_interval_s
        self.started_at = datetime.now(UTC)
        self._started_monotonic = time.monotonic()
        self.store: Store | None = None
        self.venues: dict[str, Venue] = {}
        self.feeds: list[BookFeed] = []
        self.guard: PermissionGuard | None = None
        self.engine: Engine | None = None
        self.portfolio: Portfolio | None = None
        self.kill_switch: KillSwitch | None = None
        self.store_writable = False
        self.ops_port: int | None = None
        self.halt_reason: str | None = None
        self._stop: asyncio.Event | None = None
        self._orders_cancelled = 0

    # ----- start-up -----------------------------------------------------------------------

    async def start(self) -> None:
        """Everything before trading; raises :class:`ArbotError` (one line) on refusal."""
        from arbot.engine.engine import Engine
        from arbot.engine.executor import Executor
        from arbot.engine.journal import Journal
        from arbot.engine.kill_switch import KillSwitch
        from arbot.engine.portfolio import Portfolio
        from arbot.engine.risk import RiskEngine
        from arbot.store import Store
        from arbot.strategy.context import MarketState
        from arbot.strategy.loader import load_strategy

        settings = self.settings
        if not settings.venues:
            raise ArbotError("no [venues] configured; add at least one venue to trade on")
        strategy = load_strategy(
            settings.strategy.name, settings.strategy.params, settings.strategy.path
        )
        self.store = store = Store(settings.database_url)
        state = MarketState(max_book_age_ms=settings.risk.max_book_age_ms)
        self.venues = self._build_venues(state, store)
        for name, venue in self.venues.items():
            try:
                for market in (await venue.load_markets()).values():
                    state.add_market(market)
            except KeyError as exc:
                raise ArbotError(
                    f"venues.{name}.symbols: {exc.args[0]} is not listed by the exchange"
                ) from None
        if self.mode == "live":
            await self._prove_keys()
        balances: list[Balance] = []
        for venue in self.venues.values():
            balances.extend((await venue.fetch_balances()).values())
        self.portfolio = portfolio = Portfolio(state, balances)
        journal = Journal.start_run(
            store, mode=self.mode, strategy=strategy.name, config=settings.masked()
        )
        self.run_id = journal.run_id
        if self.mode == "live":
            from arbot.engine.reconcile import reconcile

            report = await reconcile(
                journal,
                self.venues,
                cancel_unknown=settings.risk.cancel_unknown_orders,
                markets=state.markets,
            )
            if not report.clean:
                logger.warning("reconciliation found work left by a previous run: {}", report)
        self.kill_switch = KillSwitch(store, run_id=journal.run_id)
        self.kill_switch.refresh()
        if self.kill_switch.is_tripped:
            logger.warning("{}", self.kill_switch.state.describe())
        risk = RiskEngine(
            settings.risk,
            state,
            mode=self.mode,
            kill_switch=self.kill_switch,
            guard=self.guard,
            allow_unverified=[n for n, c in settings.venues.items() if c.allow_unverified_key],
        )
        executor = Executor(self.venues, journal, settings.risk, markets=state.markets, books=state)
        self.engine = engine = Engine(
            strategy=strategy,
            state=state,
            risk=risk,
            executor=executor,
            journal=journal,
            portfolio=portfolio,
        )
        engine.start()
        self.feeds = self._build_feeds(engine)
        if not self.feeds:
            raise ArbotError(
                f"strategy {strategy.name!r} asked for no book of the configured venues; "
                "check [venues.*].symbols and [strategy.params]"
            )
        self.store_writable = True
        logger.info(
            "run {} started: {} mode, strategy {}, {} venues, {} books",
            journal.run_id,
            self.mode,
            strategy.name,
            len(self.venues),
            len(self.feeds),
        )

    def _build_venues(self, state: Any, store: Store) -> dict[str, Venue]:
        from arbot.venues.ccxt_venue import CcxtVenue
        from arbot.venues.paper import PaperVenue

        venues: dict[str, Venue] = {}
        if self.mode == "paper":
            for name, config in self.settings.venues.items():

                def book_source(symbol: str, _name: str = name) -> Any:
                    return state.books.get((_name, symbol))

                venues[name] = PaperVenue.from_config(name, config, book_source=book_source)
            return venues
        from arbot.keys.guard import PermissionGuard
        from arbot.store.records import record_permission_check

        def record(venue: str, permissions: Any) -> None:
            config = self.settings.venues[venue]
            if config.credentials is not None:
                record_permission_check(
                    store, venue, config.exchange, config.credentials.key_id, permissions
                )

        self.guard = guard = PermissionGuard(
            self.settings.risk.permission_recheck_s, record=record, on_halt=self._guard_halted
        )
        for name, config in self.settings.venues.items():
            if config.credentials is None:
                raise ArbotError(
                    f"{name}: no API key in the keystore; live mode needs one "
                    f"(arbot keys add {name}), paper mode needs none"
                )
            venues[name] = CcxtVenue(name, config, guard)
        return venues

    async def _prove_keys(self) -> None:
        assert self.guard is not None
        for name in self.venues:
            await self.guard.require(name)  # KeyNotTradeOnly: one line, the start stops
            proof = self.guard.last_proof(name)
            logger.info("{}: key proven {}", name, proof.verdict.value if proof else "?")

    def _build_feeds(self, engine: Engine) -> list[BookFeed]:
        from arbot.feeds.book_feed import BookFeed, log_feed_events

        feeds = []
        for venue_name, symbol in sorted(engine.wanted):
            venue = self.venues.get(venue_name)
            if venue is None:
                continue
            config = self.settings.venues[venue_name]
            feeds.append(
                BookFeed(
                    venue,
                    symbol,
                    engine.on_update,
                    depth=FEED_DEPTH,
                    max_book_age_ms=self.settings.risk.max_book_age_ms,
                    stall_after_s=config.stall_after_s,
                    on_event=log_feed_events(f"{venue_name}:{symbol}"),
                )
            )
        return feeds

    # ----- running ------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> RunSummary:
        """Trade until ``stop`` is set (or a halt); then shut down in stages."""
        self._stop = stop
        if self.engine is None:
            await self.start()
        assert self.engine is not None
        status = "finished"
        try:
            async with asyncio.TaskGroup() as group:
                for feed in self.feeds:
                    group.create_task(self._supervise(feed), name=f"feed-{feed.name}")
                assert self.kill_switch is not None
                group.create_task(self.kill_switch.watch(0.5), name="kill-switch")
                group.create_task(self._heartbeat(), name="heartbeat")
                if self.mode == "live":
                    group.create_task(self._reconcile_forever(30.0), name="reconcile")
                if self.guard is not None:
                    group.create_task(self.guard.recheck_forever(), name="permission-recheck")
                if self.mode == "live" and self.portfolio is not None:
                    group.create_task(
                        self.portfolio.refresh_forever(self.venues.values(), 60.0),
                        name="balances",
                    )
                if self.progress is not None:
                    group.create_task(self._report_progress(), name="progress")
                if self.settings.ops.port is not None:
                    group.create_task(self._serve_ops(self.settings.ops.port), name="ops")
                group.create_task(self._wait_for_stop(stop), name="stop")
        except* _Shutdown:
            pass
        finally:
            await self._shutdown()
        if self.halt_reason is not None:
            status = "halted"
        return self._summary(status)

    async def _wait_for_stop(self, stop: asyncio.Event) -> None:
        await stop.wait()
        assert self.engine is not None
        self.engine.stop_accepting()  # before the feeds are cancelled
        raise _Shutdown

    async def _supervise(self, feed: BookFeed) -> None:
        """A feed handles stream failures itself; anything else is a bug: log, restart."""
        delay = 1.0
        while True:
            try:
                await feed.run()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.opt(exception=exc).error(
                    "feed {} crashed; restarting in {:.0f} s", feed.name, delay
                )
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, 60.0)

    async def _reconcile_forever(self, interval: float) -> None:
        """Settle orders whose fate the executor could not learn (lost answers, an
        exchange that said 5xx), whenever no execution is under way."""
        while True:
            await asyncio.sleep(interval)
            await self._reconcile_when_idle()

    async def _reconcile_when_idle(self) -> None:
        from arbot.engine.reconcile import reconcile

        engine = self.engine
        if engine is None or engine.in_flight or not engine.journal.orders(unsettled=True):
            return
        try:
            await reconcile(
                engine.journal,
                self.venues,
                cancel_unknown=self.settings.risk.cancel_unknown_orders,
                markets=self.engine.state.markets if self.engine else None,
            )
        except Exception as exc:  # a venue that cannot answer now is asked next round
            logger.warning("reconciliation postponed: {}", exc)

    async def _heartbeat(self) -> None:
        """Prove the store writable now and then (``/healthz``)."""
        from sqlalchemy import text

        assert self.store is not None
        store = self.store
        while True:
            try:
                with store.engine.begin() as connection:
                    connection.execute(
                        text("UPDATE runs SET status = 'running' WHERE id = :id"),
                        {"id": self.run_id},
                    )
                self.store_writable = True
            except Exception as exc:
                if self.store_writable:
                    logger.error("the store is not writable: {}", exc)
                self.store_writable = False
            await asyncio.sleep(self.settings.ops.heartbeat_s)

    async def _report_progress(self) -> None:
        assert self.progress is not None
        while True:
            await asyncio.sleep(self.progress_interval_s)
            self.progress(self.status())

    async def _serve_ops(self, port: int) -> None:
        from arbot.ops.http import OpsServer

        server = OpsServer(self, port)
        self.ops_port = await server.start()
        logger.info(
            "ops endpoint on http://127.0.0.1:{}/ (healthz, metrics, status)", self.ops_port
        )
        try:
            await asyncio.Event().wait()  # until cancelled
        finally:
            await server.close()

    async def _guard_halted(self, reason: str) -> None:
        """A key gained funds-moving rights: stop taking opportunities and stop the run."""
        self.halt_reason = reason
        if self.engine is not None:
            self.engine.stop_accepting()
        if self._stop is not None:
            self._stop.set()

    # ----- shutdown -----------------------------------------------------------------------

    async def _shutdown(self) -> None:
        from arbot.venues.base import cancel_all_open_orders

        engine = self.engine
        if engine is not None:
            engine.stop_accepting()
        cancelled = await _bounded(cancel_all_open_orders(self.venues.values()), "cancel orders")
        self._orders_cancelled += len(cancelled or [])
        if engine is not None:
            budget = self.settings.risk.order_timeout_s * 3 + self._unwind_budget_s()
            if not await engine.drain(budget):
                logger.error(
                    "{} execution(s) still under way after {:.0f} s; the journal keeps their "
                    "orders for reconciliation at the next start",
                    engine.in_flight,
                    budget,
                )
                for task in engine.tasks():
                    task.cancel()
            cancelled = await _bounded(
                cancel_all_open_orders(self.venues.values()), "cancel orders"
            )
            self._orders_cancelled += len(cancelled or [])
            if self.mode == "live":
                await _bounded(self._reconcile_when_idle(), "reconcile")
            engine.journal.finish_run("halted" if self.halt_reason else "finished")
        for venue in self.venues.values():
            await _bounded(venue.close(), f"close {venue.name}")
        if self.store is not None:
            self.store.close()

    def _unwind_budget_s(self) -> float:
        risk = self.settings.risk
        backoff = risk.unwind_backoff_ms / 1000.0 * (2 ** max(risk.unwind_attempts - 1, 0))
        return float(min(backoff + risk.unwind_attempts * risk.order_timeout_s, 120.0))

    # ----- reload -------------------------------------------------------------------------

    def reload(self) -> str:
        """Re-read strategy params and risk limits from the config file (SIGHUP)."""
        from arbot.config import load_settings

        engine = self.engine
        if engine is None:
            return "not running yet"
        new = load_settings(self.config_path)
        strategy = engine.strategy
        if new.strategy.name != strategy.name:
            raise ArbotError(
                f"strategy.name changed from {strategy.name!r} to {new.strategy.name!r}; "
                "a different strategy needs a restart"
            )
        fresh = type(strategy).from_params(new.strategy.params)
        strategy.params = fresh.params
        engine.risk.update_config(new.risk)
        engine.executor.risk = new.risk
        self.settings = self.settings.model_copy(
            update={"strategy": new.strategy, "risk": new.risk}
        )
        message = f"reloaded strategy params and risk limits from {self.config_path or 'defaults'}"
        logger.info(message)
        return message

    # ----- status -------------------------------------------------------------------------

    def status(self) -> Status:
        now = time.time_ns()
        engine = self.engine
        feeds: list[FeedStatus] = []
        for feed in self.feeds:
            s = feed.stats
            feeds.append(
                {
                    "venue": feed.venue.name,
                    "symbol": feed.symbol,
                    "updates": s.updates,
                    "updates_per_s": round(s.updates_per_s(now), 2),
                    "age_ms": None if s.age_ms(now) is None else round(s.age_ms(now) or 0, 1),
                    "stale": feed.is_stale(now),
                    "gaps": s.gaps,
                    "reconnects": s.reconnects,
                    "stalls": s.stalls,
                    "rate_limited": s.rate_limited,
                    "latency_ms": s.last_latency_ms,
                }
            )
        keys: dict[str, str] = {}
        for name in self.venues:
            if self.guard is None:
                keys[name] = "paper"
            else:
                proof = self.guard.last_proof(name)
                keys[name] = proof.verdict.value if proof is not None else "unproven"
        orders: dict[str, int] = {}
        if engine is not None:
            for result in engine.results:
                for order in result.orders:
                    orders[order.status.value] = orders.get(order.status.value, 0) + 1
        inventory = []
        if self.portfolio is not None:
            for balance in self.portfolio.balances:
                inventory.append(
                    {
                        "venue": balance.venue,
                        "asset": balance.asset,
                        "free": str(balance.free),
                        "used": str(balance.used),
                    }
                )
        backoffs = {name: _rate_limited(venue) for name, venue in self.venues.items()}
        return {
            "mode": self.mode,
            "run_id": getattr(self, "run_id", None),
            "strategy": engine.strategy.name if engine is not None else "",
            "started_at": self.started_at.isoformat(),
            "uptime_s": round(time.monotonic() - self._started_monotonic, 1),
            "feeds": feeds,
            "keys": keys,
            "store_writable": self.store_writable,
            "kill_switch": self.kill_switch.state.to_dict()
            if self.kill_switch
            else {"tripped": False},
            "opportunities": {
                "seen": engine.seen if engine else 0,
                "taken": engine.taken if engine else 0,
                "rejected": dict(engine.rejected) if engine else {},
                "outcomes": dict(engine.outcomes) if engine else {},
            },
            "orders": orders,
            "fills": engine.fills if engine else 0,
            "pnl_quote": {q: str(v) for q, v in engine.pnl.items()} if engine else {},
            "inventory": inventory,
            "rate_limit_backoffs": backoffs,
        }

    def _summary(self, status: str) -> RunSummary:
        from arbot.redact import mask_url_password

        engine = self.engine
        assert engine is not None
        return RunSummary(
            run_id=self.run_id,
            mode=self.mode,
            status=status,
            duration_s=round(time.monotonic() - self._started_monotonic, 1),
            updates=engine.updates,
            seen=engine.seen,
            taken=engine.taken,
            rejected=dict(engine.rejected),
            outcomes=dict(engine.outcomes),
            fills=engine.fills,
            pnl={q: str(v) for q, v in engine.pnl.items()},
            database=mask_url_password(self.settings.database_url),
            open_orders_cancelled=self._orders_cancelled,
            reason=self.halt_reason,
        )


def _rate_limited(venue: Venue) -> int:
    """429/418 answers the venue's REST gate backed off (a paper venue: its data source's)."""
    for candidate in (venue, getattr(venue, "market_data", None)):
        rest = getattr(candidate, "rest", None)
        if rest is not None:
            return int(rest.stats.rate_limited)
    return 0


async def _bounded(awaitable: Any, what: str) -> Any:
    try:
        return await asyncio.wait_for(awaitable, SHUTDOWN_STEP_S)
    except TimeoutError:
        logger.error("shutdown: {} did not finish within {:.0f} s", what, SHUTDOWN_STEP_S)
    except Exception as exc:
        logger.error("shutdown: {} failed: {}", what, exc)
    return None


def install_signal_handlers(daemon: Daemon, stop: asyncio.Event) -> None:
    """SIGTERM/SIGINT stop the daemon cleanly; SIGHUP reloads params and limits."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    def reload() -> None:
        try:
            daemon.reload()
        except ArbotError as exc:
            logger.error("reload refused: {}", exc)

    loop.add_signal_handler(signal.SIGHUP, reload)


@contextlib.contextmanager
def pid_file(path: Path) -> Any:
    """Write our pid for ``arbot reload``; refuse when another live daemon holds it."""
    if path.exists():
        try:
            other = int(path.read_text().strip())
            os.kill(other, 0)
        except (ValueError, ProcessLookupError, PermissionError):
            pass  # stale: the process is gone
        else:
            if other != os.getpid():
                raise ArbotError(
                    f"{path}: arbot run is already running as pid {other}; stop it first "
                    "or set [ops] pid_file to another path"
                )
    from arbot.fileio import atomic_write_text

    atomic_write_text(path, f"{os.getpid()}\n")
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            if path.read_text().strip() == str(os.getpid()):
                path.unlink()
