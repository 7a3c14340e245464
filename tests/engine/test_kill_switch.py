"""The kill switch: persistent, shared through the database, fail-closed; and end to end,
once it trips not one more order reaches the simulator.

The end-to-end tests trade through the real stack below the executor: a real
:class:`CcxtVenue` per simulated exchange, the real :class:`PermissionGuard` proving the
simulator's trade-only keys, the real :class:`RiskEngine` gating every opportunity
(approved → every leg sent as an IOC order; rejected → nothing sent).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from decimal import Decimal
from pathlib import Path

from sqlalchemy import text

from arbot.cli.main import main
from arbot.config import RiskConfig
from arbot.engine.kill_switch import KillSwitch, KillSwitchState
from arbot.engine.portfolio import Portfolio
from arbot.engine.risk import Reason, RiskEngine, RiskVerdict
from arbot.keys.guard import PermissionGuard
from arbot.model import Leg, Opportunity, Order, OrderType, Side, TimeInForce, to_decimal
from arbot.sim.server import SimServer
from arbot.store import KillSwitchRow, Store
from arbot.strategy.context import MarketState
from arbot.testing import sim_venue_config
from arbot.venues.ccxt_venue import CcxtVenue

D = Decimal
SYMBOL = "BTC/USDT"
VENUES = ("binance", "okx")


def rows(store: Store) -> list[tuple[str, str, str]]:
    from sqlmodel import col, select

    with store.session() as session:
        found = session.exec(select(KillSwitchRow).order_by(col(KillSwitchRow.id)))
        return [(r.action, r.reason, r.source) for r in found]


# ----- the switch itself ------------------------------------------------------------------


def test_a_trip_survives_a_restart_until_an_operator_resets_it(database_url: str) -> None:
    with Store(database_url) as store:
        switch = KillSwitch(store)
        assert not switch.is_tripped
        switch.trip("max_daily_loss", "risk")
    with Store(database_url) as store:  # a restarted daemon
        switch = KillSwitch(store)
        assert switch.is_tripped
        assert (switch.state.reason, switch.state.source) == ("max_daily_loss", "risk")
        switch.reset()
    with Store(database_url) as store:
        assert not KillSwitch(store).is_tripped
        assert rows(store) == [
            ("trip", "max_daily_loss", "risk"),
            ("reset", "operator", "operator"),
        ]


def test_refresh_sees_another_process_and_tells_listeners(database_url: str) -> None:
    with Store(database_url) as store, Store(database_url) as other:
        daemon, operator = KillSwitch(store), KillSwitch(other)
        seen: list[tuple[bool, bool]] = []
        daemon.add_listener(lambda old, new: seen.append((old.tripped, new.tripped)))
        operator.trip("operator", "operator")
        assert not daemon.is_tripped  # cached until the next refresh
        assert daemon.refresh().tripped
        assert daemon.refresh().tripped  # no change, no call
        operator.reset()
        assert not daemon.refresh().tripped
        assert seen == [(False, True), (True, False)]


def test_a_read_that_raced_our_own_write_never_rolls_the_state_back(database_url: str) -> None:
    with Store(database_url) as store:
        switch = KillSwitch(store)
        before = switch._read()  # a refresh's read, in flight in a worker thread...
        switch.trip("max_consecutive_failures")  # ...while the loop trips the switch
        switch._apply(before)  # ...then the old read lands
        assert switch.is_tripped


def test_without_a_store_the_switch_lives_in_memory() -> None:
    switch = KillSwitch(None)
    assert switch.trip("operator", "operator").tripped
    assert switch.refresh().tripped
    assert not switch.reset().tripped
    assert switch.state.to_dict()["reason"] == "operator"


async def test_an_unreadable_switch_holds_trading_stopped(database_url: str) -> None:
    with Store(database_url) as store:
        switch = KillSwitch(store)
        risk = RiskEngine(RiskConfig(), MarketState(), mode="paper", kill_switch=switch)
        risk.consecutive_failures = 2
        watcher = asyncio.create_task(switch.watch(0.02))
        try:
            with store.engine.begin() as connection:
                connection.execute(text("DROP TABLE kill_switch"))
            await _until(lambda: switch.is_tripped)
            assert switch.state.reason == "kill_switch_unreadable"
            Store(database_url).close()  # opening the store creates the missing table
            await _until(lambda: not switch.is_tripped)
            assert risk.consecutive_failures == 2  # a recovered read is no operator reset
        finally:
            watcher.cancel()
            with suppress(asyncio.CancelledError):
                await watcher


async def _until(condition: Callable[[], bool], timeout: float = 5.0) -> float:
    """Wait until ``condition()`` holds; return how long it took."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)
    return time.monotonic() - start


# ----- end to end: not one more order after the trip ---------------------------------------


class Rig:
    """Venues, guard, state, portfolio and risk over one simulator and one database."""

    def __init__(self, sim: SimServer, store: Store, risk_config: RiskConfig) -> None:
        self.sim = sim
        self.store = store
        self.guard = PermissionGuard(300, warn=lambda _: None)
        self.venues = {
            name: CcxtVenue(name, sim_venue_config(sim, name, symbols=[SYMBOL]), self.guard)
            for name in VENUES
        }
        self.state = MarketState()
        self.portfolio = Portfolio(self.state)
        self.kill_switch = KillSwitch(store)
        self.risk_config = risk_config
        self.risk: RiskEngine
        self.sent = 0

    async def start(self) -> None:
        for name, venue in self.venues.items():
            for market in (await venue.load_markets()).values():
                self.state.add_market(market)
            await self.guard.require(name)  # the daemon proves every key before trading
            await self.portfolio.refresh_venue(venue)
        self.risk = RiskEngine(
            self.risk_config,
            self.state,
            mode="live",
            guard=self.guard,
            kill_switch=self.kill_switch,
        )

    async def close(self) -> None:
        for venue in self.venues.values():
            await venue.close()

    def orders_at_the_simulator(self) -> int:
        return sum(len(self.sim.venues[name].orders) for name in VENUES)

    async def opportunity(self, *, fill: bool, amount: str = "0.001") -> Opportunity:
        """Buy on binance, sell on okx; ``fill=False`` prices both legs out of reach."""
        for name, venue in self.venues.items():
            self.state.books[(name, SYMBOL)] = await venue.fetch_order_book(SYMBOL, 5)
        ask = self.state.books[("binance", SYMBOL)].best_ask
        bid = self.state.books[("okx", SYMBOL)].best_bid
        assert ask is not None
        assert bid is not None
        buy, sell = to_decimal(ask), to_decimal(bid)
        if not fill:
            buy, sell = (buy * D("0.9")).quantize(D("0.01")), (sell * D("1.1")).quantize(D("0.01"))
        legs = (
            Leg("binance", SYMBOL, Side.BUY, D(amount), buy),
            Leg("okx", SYMBOL, Side.SELL, D(amount), sell),
        )
        return Opportunity("test", legs, D(0), D(0), "USDT", time.time_ns())

    async def attempt(self, opportunity: Opportunity) -> RiskVerdict:
        """Approve → send every leg and settle on the real fills; reject → send nothing."""
        verdict, reservation = self.risk.admit(opportunity)
        if reservation is None:
            return verdict
        pnl = D(0)
        filled = []
        for leg in opportunity.legs:
            self.sent += 1
            order = Order(
                f"ks{self.sent}x{time.time_ns() % 10**9}",
                leg.venue,
                leg.symbol,
                leg.side,
                OrderType.LIMIT,
                leg.amount,
                leg.limit_price,
                TimeInForce.IOC,
            )
            venue = self.venues[leg.venue]
            placed = await venue.create_order(order)
            filled.append(placed.filled == leg.amount)
            for fill in await venue.fetch_order_fills(placed) if placed.filled else []:
                self.portfolio.apply_fill(fill, self.state.markets[(leg.venue, leg.symbol)])
                sign = 1 if fill.side is Side.SELL else -1
                fee = fill.fee if fill.fee_currency == "USDT" else fill.fee * fill.price
                pnl += sign * fill.amount * fill.price - fee
        outcome = "filled" if all(filled) else "failed" if not any(filled) else "stranded"
        self.risk.settle(reservation, outcome, realized_pnl=pnl)
        return verdict


@asynccontextmanager
async def rig(sim: SimServer, database_url: str, **limits: object) -> AsyncIterator[Rig]:
    config = RiskConfig(**{"max_orders_per_second": 100, **limits})
    with Store(database_url) as store:
        r = Rig(sim, store, config)
        try:
            await r.start()
            yield r
        finally:
            await r.close()


async def assert_nothing_more_is_sent(r: Rig, tries: int = 3) -> None:
    before = r.orders_at_the_simulator()
    for fill in (True, False, True)[:tries]:
        verdict = await r.attempt(await r.opportunity(fill=fill))
        assert verdict.reason is Reason.KILL_SWITCH
    assert r.orders_at_the_simulator() == before


def write_config(tmp_path: Path, database_url: str) -> Path:
    path = tmp_path / "arbot.toml"
    path.write_text(f"database_url = {json.dumps(database_url)}\n")
    return path


async def test_daily_loss_trips_and_a_restart_stays_halted_until_resume(
    frozen_sim: SimServer, database_url: str, tmp_path: Path
) -> None:
    async with rig(frozen_sim, database_url, max_daily_loss=D("0.2")) as r:
        for _ in range(10):  # each round trip loses the spread and two taker fees
            await r.attempt(await r.opportunity(fill=True))
            if r.kill_switch.is_tripped:
                break
        assert r.kill_switch.state.reason == "max_daily_loss"
        assert r.risk.realized_pnl_today <= D("-0.2")
        assert r.orders_at_the_simulator() >= 4
        await assert_nothing_more_is_sent(r)

    async with rig(frozen_sim, database_url) as r:  # restarted: still halted
        await assert_nothing_more_is_sent(r, tries=1)
        assert main(["resume", "-c", str(write_config(tmp_path, database_url))]) == 0
        r.kill_switch.refresh()
        before = r.orders_at_the_simulator()
        verdict = await r.attempt(await r.opportunity(fill=True))
        assert verdict.approved
        assert r.orders_at_the_simulator() == before + 2


async def test_consecutive_failures_trip_and_nothing_more_is_sent(
    frozen_sim: SimServer, database_url: str
) -> None:
    async with rig(frozen_sim, database_url, max_consecutive_failures=3) as r:
        for _ in range(3):
            assert (await r.attempt(await r.opportunity(fill=False))).approved
        assert r.risk.consecutive_failures == 3
        assert r.kill_switch.state.reason == "max_consecutive_failures"
        assert r.orders_at_the_simulator() == 6
        await assert_nothing_more_is_sent(r)
    with Store(database_url) as store:
        assert rows(store) == [("trip", "max_consecutive_failures", "risk")]


async def test_arbot_halt_from_another_process_stops_a_trading_loop(
    frozen_sim: SimServer, database_url: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path, database_url)
    async with rig(frozen_sim, database_url, max_consecutive_failures=1000) as r:
        watcher = asyncio.create_task(r.kill_switch.watch(0.05))
        env = {k: v for k, v in os.environ.items() if not k.startswith("ARBOT_")}
        halt = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "arbot", "halt", "-c", str(config), "--reason", "test halt",
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            attempts = 0
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:  # trade until the switch stops us
                verdict = await r.attempt(await r.opportunity(fill=False))
                if verdict.reason is Reason.KILL_SWITCH:
                    break
                attempts += 1
                await asyncio.sleep(0.01)
            out, err = await halt.communicate()
            assert halt.returncode == 0, err.decode()
            assert b"kill switch TRIPPED" in out
            assert r.kill_switch.state.to_dict()["reason"] == "test halt"
            assert attempts >= 1  # the loop was trading when the halt landed
            assert r.orders_at_the_simulator() == 2 * attempts
            await assert_nothing_more_is_sent(r)
        finally:
            watcher.cancel()
            with suppress(asyncio.CancelledError):
                await watcher
            if halt.returncode is None:
                halt.kill()
                await halt.wait()


async def test_a_halt_takes_effect_within_one_watch_interval(
    database_url: str, tmp_path: Path
) -> None:
    with Store(database_url) as store, Store(database_url) as other:
        switch = KillSwitch(store)
        watcher = asyncio.create_task(switch.watch(0.1))
        try:
            await asyncio.sleep(0.05)
            KillSwitch(other).trip("operator", "operator")
            waited = await _until(lambda: switch.is_tripped)
            assert waited < 1.0
        finally:
            watcher.cancel()
            with suppress(asyncio.CancelledError):
                await watcher


def test_state_describes_itself() -> None:
    assert "arbot resume" in KillSwitchState(True, "operator", "operator").describe()
    assert KillSwitchState(False).to_dict() == {
        "tripped": False,
        "reason": None,
        "source": None,
        "at": None,
    }
