"""Backtest and paper mode agree: the same recorded stream, replayed by the simulator to a
paper-mode daemon and fed to the backtest with matching latency, gives the same
opportunities and the same trades.

The first ten minutes of the Binance and Huobi LINK/USDT snapshots (a row a second on
each venue) go two ways, under one configuration file and into one store:

* **paper**: the simulator serves the rows as depth diffs, Huobi's 500 ms after
  Binance's of the same second, to ``arbot run --mode paper``: a separate process with
  unmodified ccxt streams and :class:`PaperVenue` fills, as a user runs it. The next row
  goes out once the daemon's status shows the previous one applied and every execution
  it started finished: orders take no time measured in rows, as in the backtest.
* **backtest**: :class:`Backtest` replays the original rows of those seconds from the
  imported dataset with Huobi's market-data latency set to 500 ms, no order latency, and
  the markets the daemon loaded from the simulator.

The opportunities (legs, limit prices, edge, outcome, PnL), in order, and the orders and
fills of each (venue, side, amount, price, fee) are equal; there are as many as the
instants at which the books cross tradably after fees, counted from the CSV text alone;
a backtest without the matching latency finds others.

Not paced by the recorded time: at 10x the daemon gets a row every 50 ms, and an
execution that unwinds spends 10-50 ms on store commits there, so a paced replay lets the
next row overtake an unwind (zero order latency has no wall-clock equivalent). The unwind
backoff is 0 for the same reason: the backtest waits it in replay time, where the next
row may arrive meanwhile; the daemon, which gets no row while it executes, in none.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import re
import signal
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
from backtest_support import LINK, SHARED_DATA
from sqlalchemy import text

from arbot.backtest.runner import Backtest
from arbot.config import LatencyConfig, Settings, load_settings
from arbot.engine.journal import Journal
from arbot.model import Market
from arbot.sim.replay import Replay, open_replay
from arbot.sim.server import SimServer
from arbot.store import Store

WINDOW_S = 600  # recorded seconds replayed (from the first row)
HUOBI_DELAY_MS = 500  # Huobi's rows are seen this long after Binance's of the same second
FEE = Decimal("0.00005")  # taker fee on both venues (0.5 bps): fewer crossings, real fees
VENUES = {"binance": "orderbook_bnc.csv", "huobi": "orderbook_hb.csv"}
SYMBOL = "LINK/USDT"


# ----- the recorded stream ---------------------------------------------------------------


def shifted_window(source: Path, out: Path) -> Path:
    """The first ``WINDOW_S`` rows of each venue's CSV, Huobi's stamped ``HUOBI_DELAY_MS``
    later (what a replay with that market-data latency would show)."""
    out.mkdir()
    for venue, name in VENUES.items():
        shift = timedelta(milliseconds=HUOBI_DELAY_MS if venue == "huobi" else 0)
        with (source / name).open(newline="") as raw, (out / name).open("w", newline="") as cut:
            rows = csv.reader(raw)
            writer = csv.writer(cut)
            writer.writerow(next(rows))
            for _, row in zip(range(WINDOW_S), rows, strict=False):
                stamp = datetime.fromisoformat(row[0]) + shift
                writer.writerow([stamp.isoformat(sep=" ", timespec="milliseconds"), *row[1:]])
    return out


Ladder = list[tuple[Decimal, Decimal]]


def books_in_order(folder: Path) -> Iterator[tuple[str, Ladder, Ladder]]:
    """``(venue, bids, asks)`` of every row of the derived CSVs, in time order, exact."""
    rows: list[tuple[datetime, str, Ladder, Ladder]] = []
    for venue, name in VENUES.items():
        with (folder / name).open(newline="") as handle:
            for row in csv.DictReader(handle):
                bids = [(Decimal(row[f"b{i}"]), Decimal(row[f"bv{i}"])) for i in range(1, 11)]
                asks = [(Decimal(row[f"a{i}"]), Decimal(row[f"av{i}"])) for i in range(1, 11)]
                rows.append((datetime.fromisoformat(row["timestamp"]), venue, bids, asks))
    for _, venue, bids, asks in sorted(rows, key=lambda r: r[0]):
        yield venue, bids, asks


def crossed_amount(bids: Ladder, asks: Ladder, fee: Decimal) -> Decimal:
    """How much can be bought on ``asks`` and sold on ``bids`` with a profit on every unit
    after a taker fee on both legs (bid x (1 - fee) > ask x (1 + fee)), level by level."""
    amount = Decimal(0)
    i = j = 0
    bid_left, ask_left = bids[0][1], asks[0][1]
    while i < len(bids) and j < len(asks) and bids[i][0] * (1 - fee) > asks[j][0] * (1 + fee):
        take = min(bid_left, ask_left)
        amount += take
        bid_left -= take
        ask_left -= take
        if not bid_left and (i := i + 1) < len(bids):
            bid_left = bids[i][1]
        if not ask_left and (j := j + 1) < len(asks):
            ask_left = asks[j][1]
    return amount


def walk(levels: Ladder, amount: Decimal) -> tuple[Decimal, Decimal]:
    """Quote value of taking ``amount`` (at most the depth) from ``levels``, and the last
    level's price it reaches."""
    value = Decimal(0)
    for price, size in levels:
        take = min(size, amount)
        value += take * price
        amount -= take
        if not amount:
            return value, price
    raise AssertionError("deeper than the book")


def tradable(
    bids: Ladder, asks: Ladder, fee: Decimal, lot: Decimal, min_buy: Decimal, min_sell: Decimal
) -> bool:
    """Whether buying on ``asks`` and selling on ``bids`` earns after fees at some size on
    the ``lot`` grid whose legs are worth each venue's minimum notional (at the last
    level reached): the most profitable size, or the smallest larger one that is big
    enough."""
    amount = max(crossed_amount(bids, asks, fee) // lot * lot, lot)
    depth = min(sum(size for _, size in bids), sum(size for _, size in asks))
    while amount <= depth:
        cost, worst_ask = walk(asks, amount)
        proceeds, worst_bid = walk(bids, amount)
        if amount * worst_ask >= min_buy and amount * worst_bid >= min_sell:
            return proceeds * (1 - fee) - cost * (1 + fee) > 0
        amount += lot
    return False


def crossing_instants(
    folder: Path, fee: Decimal, lot: Decimal, min_notional: dict[str, Decimal]
) -> int:
    """Rows after which one venue's bids and the other's asks (each venue's latest row)
    are :func:`tradable`: what a depth-walking cross-exchange strategy with no minimum
    edge must find, once per row. Counted from the CSV text alone."""
    books: dict[str, tuple[Ladder, Ladder]] = {}
    count = 0
    for venue, bids, asks in books_in_order(folder):
        books[venue] = (bids, asks)
        if len(books) < len(VENUES):
            continue
        for buy, sell in (("binance", "huobi"), ("huobi", "binance")):
            sell_bids, buy_asks = books[sell][0], books[buy][1]
            if tradable(sell_bids, buy_asks, fee, lot, min_notional[buy], min_notional[sell]):
                count += 1
    return count


# ----- the configuration both runs read --------------------------------------------------


def venue_tables(sim: SimServer) -> str:
    return "".join(
        f"""
[venues.{name}]
exchange = "{sim.venues[name].protocol}"
symbols = ["{SYMBOL}"]
endpoint = "{sim.venue_url(name)}"
taker_fee = {FEE}
balances = {{ USDT = 100000000, LINK = 1000000 }}
stall_after_s = 300
"""
        for name in VENUES
    )


def grid_tables(markets: dict[str, Market]) -> str:
    """``[backtest.venues.NAME]``: Huobi's data latency and the grids the daemon trades on."""
    out = ""
    for name, market in markets.items():
        latency = HUOBI_DELAY_MS if name == "huobi" else 0
        grid = {
            "price_tick": market.price_tick,
            "amount_step": market.amount_step,
            "min_amount": market.min_amount,
            "min_notional": market.min_notional,
            "max_amount": market.max_amount,
        }
        fields = ", ".join(f'{k} = "{v}"' for k, v in grid.items() if v is not None)
        out += f"""
[backtest.venues.{name}]
data_latency = {{ ms = {latency} }}
order_latency = {{ ms = 0 }}
markets = {{ "{SYMBOL}" = {{ {fields} }} }}
"""
    return out


def write_config(tmp_path: Path, sim: SimServer, markets: dict[str, Market]) -> Path:
    """The one file both runs read: venues on ``sim``, the strategy, ample limits, and
    the backtest's view of ``markets`` (none yet: the daemon's are loaded with it)."""
    path = tmp_path / "arbot.toml"
    path.write_text(
        f"""
database_url = "sqlite:///{tmp_path / "arbot.db"}"
{venue_tables(sim)}
[strategy]
name = "cross_exchange"
[strategy.params]
min_edge_bps = 0

[risk]
max_book_age_ms = 60000  # ages: wall clock in the daemon, 500 ms of replay in the backtest
max_order_notional = 100000000
max_symbol_notional = 100000000
max_open_exposure = 100000000
max_orders_per_second = 1000
max_daily_loss = 100000000
unwind_backoff_ms = 0

[ops]
port = 0
pid_file = "{tmp_path / "arbot.pid"}"
{grid_tables(markets)}
"""
    )
    return path


def without_data_latency(settings: Settings) -> Settings:
    venues = {
        name: venue.model_copy(update={"data_latency": LatencyConfig()})
        for name, venue in settings.backtest.venues.items()
    }
    backtest = settings.backtest.model_copy(update={"venues": venues})
    return settings.model_copy(update={"backtest": backtest})


async def daemon_markets(config: Path) -> dict[str, Market]:
    """The markets ``arbot run --mode paper`` loads for each venue (through the same
    read-only ccxt venue, from the simulator)."""
    from arbot.venues.paper import PaperVenue

    settings = load_settings(config)
    markets = {}
    for name, venue_config in settings.venues.items():
        venue = PaperVenue.from_config(name, venue_config)
        try:
            markets[name] = (await venue.load_markets())[SYMBOL]
        finally:
            await venue.close()
    return markets


# ----- the paper daemon ------------------------------------------------------------------


class Log:
    """A process's stderr, drained as it comes (a full pipe would stall the daemon)."""

    def __init__(self, stream: asyncio.StreamReader) -> None:
        self.lines: list[str] = []
        self.ended = False
        self._changed = asyncio.Condition()
        self._task = asyncio.create_task(self._drain(stream))

    async def _drain(self, stream: asyncio.StreamReader) -> None:
        while raw := await stream.readline():
            async with self._changed:
                self.lines.append(raw.decode())
                self._changed.notify_all()
        async with self._changed:
            self.ended = True
            self._changed.notify_all()

    async def expect(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        regex = re.compile(pattern)
        seen = 0

        def found() -> re.Match[str] | None:
            nonlocal seen
            for line in self.lines[seen:]:
                match = regex.search(line)
                if match:
                    return match
            seen = len(self.lines)
            return None

        async with asyncio.timeout(timeout), self._changed:
            while (match := found()) is None:
                if self.ended:
                    raise AssertionError(f"log ended before {pattern!r}: {self.lines[-8:]}")
                await self._changed.wait()
        return match

    async def text(self) -> str:
        await self._task
        return "".join(self.lines)


class Daemon:
    """``arbot run --mode paper`` in a subprocess, asked through its ops endpoint."""

    def __init__(self, process: asyncio.subprocess.Process, http: aiohttp.ClientSession) -> None:
        self.process = process
        self.http = http
        assert process.stderr is not None
        self.log = Log(process.stderr)
        self.url = ""

    async def ready(self) -> None:
        port = (await self.log.expect(r"ops endpoint on http://127\.0\.0\.1:(\d+)/")).group(1)
        self.url = f"http://127.0.0.1:{port}/status"
        for venue in VENUES:
            await self.log.expect(rf"feed {venue}:{SYMBOL}: live")

    async def settled(self, updates: dict[str, int]) -> None:
        """Wait until the daemon has applied ``updates`` book updates per venue and every
        execution they started has its outcome."""
        async with asyncio.timeout(30):
            while True:
                async with self.http.get(self.url) as response:
                    status = await response.json()
                seen = {feed["venue"]: feed["updates"] for feed in status["feeds"]}
                assert all(seen[v] <= n for v, n in updates.items()), (seen, updates)
                decided = status["opportunities"]
                finished = sum(decided["outcomes"].values())
                if seen == updates and finished == decided["taken"]:
                    return

    async def stop(self) -> dict[str, Any]:
        """SIGTERM; the summary it prints once it has shut down cleanly."""
        self.process.send_signal(signal.SIGTERM)
        assert self.process.stdout is not None
        async with asyncio.timeout(60):
            out = await self.process.stdout.read()
            code = await self.process.wait()
            log = await self.log.text()
        assert code == 0, log[-3000:]
        summary: dict[str, Any] = json.loads(out)
        return summary


async def run_paper(config: Path, replay: Replay, sim: SimServer) -> dict[str, Any]:
    """Replay the recording to a paper daemon, one event at a time: each is served once the
    daemon has applied the previous one and finished what it started, as the backtest's
    next moment comes after its executions when orders take no time."""
    events = replay.events()
    # Each venue's first row is on the simulator before the daemon subscribes, so the
    # daemon's first update of a venue is that row, as in the backtest.
    updates: dict[str, int] = {}
    for event in events:
        assert event.venue not in updates
        replay.apply(sim, event)
        updates[event.venue] = 1
        if len(updates) == len(VENUES):
            break
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARBOT_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "arbot",
        "run",
        "--mode",
        "paper",
        "-c",
        str(config),
        "--json",
        cwd=config.parent,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with aiohttp.ClientSession() as http:
            daemon = Daemon(process, http)
            await daemon.ready()
            await daemon.settled(updates)
            for event in events:
                assert replay.apply(sim, event) is not None  # every row changes its book
                updates[event.venue] += 1
                await daemon.settled(updates)
            assert updates == dict.fromkeys(VENUES, WINDOW_S)
            return await daemon.stop()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


# ----- what the store holds of a run -----------------------------------------------------


def decisions(store: Store, run_id: int) -> list[dict[str, Any]]:
    """Each opportunity of the run in order: legs, edge, decision, outcome, PnL, and the
    orders and fills of its execution (without ids, times or anything else run-specific)."""
    journal = Journal(store, run_id)
    orders: dict[int, list[tuple[Any, ...]]] = {}
    owner: dict[str, tuple[int, str]] = {}
    for entry in journal.orders(run_id=run_id):
        assert entry.opportunity_id is not None
        o = entry.order
        owner[o.client_order_id] = (entry.opportunity_id, entry.purpose)
        orders.setdefault(entry.opportunity_id, []).append(
            (
                entry.purpose,
                o.venue,
                o.symbol,
                o.side.value,
                o.type.value,
                o.time_in_force.value,
                o.amount,
                o.price,
                o.status.value,
                o.filled,
                o.average_price,
            )
        )
    fills: dict[int, list[tuple[Any, ...]]] = {}
    for fill in journal.fills(run_id=run_id):
        opportunity_id, purpose = owner[fill.client_order_id]
        fills.setdefault(opportunity_id, []).append(
            (
                purpose,
                fill.venue,
                fill.symbol,
                fill.side.value,
                fill.amount,
                fill.price,
                fill.fee,
                fill.fee_currency,
            )
        )
    with store.engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT id, legs, edge_quote, edge_bps, taken, reason, outcome, "
                "realized_pnl_quote FROM opportunities WHERE run_id = :run ORDER BY id"
            ),
            {"run": run_id},
        ).mappings()
        return [
            {
                "legs": [
                    (
                        leg["venue"],
                        leg["symbol"],
                        leg["side"],
                        Decimal(leg["amount"]),
                        Decimal(leg["limit_price"]),
                    )
                    for leg in json.loads(row["legs"])
                ],
                "edge_quote": Decimal(row["edge_quote"]),
                "edge_bps": Decimal(row["edge_bps"]),
                "taken": bool(row["taken"]),
                "reason": row["reason"],
                "outcome": row["outcome"],
                "pnl": None
                if row["realized_pnl_quote"] is None
                else Decimal(row["realized_pnl_quote"]),
                "orders": sorted(orders.get(row["id"], [])),
                "fills": sorted(fills.get(row["id"], [])),
            }
            for row in rows
        ]


# ----- the test --------------------------------------------------------------------------


def test_paper_daemon_and_backtest_take_the_same_trades_on_the_same_stream(
    link_data: Path, tmp_path: Path
) -> None:
    folder = shifted_window(SHARED_DATA / LINK, tmp_path / "recording")
    replay = open_replay(folder)

    async def paper() -> tuple[Path, dict[str, Market], dict[str, Any]]:
        sim = SimServer(replay.sim_config(), makers=False)
        await sim.start(port=0)
        try:
            markets = await daemon_markets(write_config(tmp_path, sim, {}))
            config = write_config(tmp_path, sim, markets)
            return config, markets, await run_paper(config, replay, sim)
        finally:
            await sim.close()

    config, markets, summary = asyncio.run(paper())
    # The daemon trades on the grid the simulator inferred from the recording (Huobi's
    # amounts carry float noise down to 1e-17); ccxt reports no minimum notional for the
    # OKX protocol. The backtest gets exactly these markets.
    for name, market in markets.items():
        served = replay.markets[(name, SYMBOL)]
        assert (market.price_tick, market.amount_step) == (served.tick, served.lot)
    assert {name: m.min_notional for name, m in markets.items()} == {
        "binance": Decimal(5),
        "huobi": Decimal(0),
    }
    assert summary["status"] == "finished"
    assert summary["updates"] == WINDOW_S * len(VENUES)

    assert replay.first_ns is not None
    start, end = replay.first_ns, replay.first_ns + WINDOW_S * 10**9
    settings = load_settings(config)
    result = Backtest(settings, link_data, start_ns=start, end_ns=end).run()
    assert result.summary["updates"] == WINDOW_S * len(VENUES)  # the original rows...
    assert result.summary["moments"] == WINDOW_S * len(VENUES)  # ...never two at one instant
    # Control: the same backtest without Huobi's latency sees both rows of a second at once.
    unmatched = without_data_latency(settings)
    control = Backtest(unmatched, link_data, start_ns=start, end_ns=end).run()

    with Store(f"sqlite:///{tmp_path / 'arbot.db'}") as store:
        with store.engine.connect() as connection:
            runs = {
                row.id: row.mode for row in connection.execute(text("SELECT id, mode FROM runs"))
            }
        paper_run = decisions(store, summary["run_id"])
        backtest_run = decisions(store, result.run_id)
        control_run = decisions(store, control.run_id)
    assert runs == {
        summary["run_id"]: "paper",
        result.run_id: "backtest",
        control.run_id: "backtest",
    }

    # The same opportunities in the same order, each executed into the same orders and fills.
    for number, (in_paper, in_backtest) in enumerate(zip(paper_run, backtest_run, strict=False)):
        assert in_paper == in_backtest, f"opportunity {number + 1} differs"
    assert len(paper_run) == len(backtest_run)
    # ...and there are as many as the CSV rows say, enough to matter.
    minimums = {name: market.min_notional for name, market in markets.items()}
    crossings = crossing_instants(folder, FEE, lot=Decimal("0.001"), min_notional=minimums)
    assert len(paper_run) == crossings > 100
    assert all(d["taken"] for d in paper_run)
    outcomes = Counter(d["outcome"] for d in paper_run)
    assert outcomes["filled"] > 100
    assert outcomes["unwound"] > 10  # liquidity one opportunity took is gone for the next
    fills = [f for d in paper_run for f in d["fills"]]
    assert len(fills) >= 2 * len(paper_run)
    assert all(fee > 0 for *_, fee, _ in fills)
    assert summary["fills"] == result.summary["fills"] == len(fills)
    assert Decimal(summary["pnl"]["USDT"]) == Decimal(result.summary["pnl_net_quote"]) > 0
    # Without the matching latency the backtest finds other opportunities.
    assert control_run != backtest_run
    assert len(control_run) < len(backtest_run)
