"""Shared by the engine tests: a trading desk on the simulator, and the crash-test driver.

Everything is real: ``CcxtVenue`` objects with a real :class:`PermissionGuard` (keys
proven trade-only by the simulator's own answers), a real store, the real journal and
executor. The comparison helpers read the simulator's own records (``SimVenue.orders``,
``rejections``, ``trades``) and never arbot's.

Run as a script, this module is the crash-test driver (see ``test_crash.py``)::

    python tests/engine/execution_support.py --sim-url http://127.0.0.1:PORT --db FILE

It imports everything once, then reads one JSON job per line on stdin and forks a child
per job. The child trades a few opportunities on the simulator and is killed with
SIGKILL at a chosen point: at the N-th step of the executor (its ``trace`` hook calls
``os.kill(os.getpid(), SIGKILL)``), or by the parent a given number of milliseconds
after the child reports that it is ready to trade. The parent answers each job with one
JSON line: how the child ended.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import select
import signal
import sys
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from arbot.config import RiskConfig, VenueConfig
from arbot.engine.executor import Executor, Trace
from arbot.engine.journal import Journal
from arbot.keys.credentials import Credentials
from arbot.keys.guard import PermissionGuard
from arbot.model import Leg, Market, Opportunity, Side
from arbot.store import Store
from arbot.venues.ccxt_venue import CcxtVenue
from arbot.venues.factory import build_exchange

VENUES = ("binance", "okx")
SYMBOLS = ["BTC/USDT", "ETH/USDT", "ETH/BTC"]
QUOTE = "USDT"
FAST_RISK = RiskConfig(
    order_timeout_s=2.0, unwind_attempts=3, unwind_backoff_ms=10.0, max_unwind_loss_bps=Decimal(50)
)


# ----- a desk: venues, guard, journal, executor --------------------------------------


@dataclass
class Desk:
    store: Store
    journal: Journal
    venues: dict[str, CcxtVenue]
    markets: dict[tuple[str, str], Market]
    executor: Executor
    guard: PermissionGuard


def venue_config(endpoint: str, protocol: str, key: dict[str, Any]) -> VenueConfig:
    from pydantic import SecretStr

    return VenueConfig(
        exchange=protocol,
        symbols=SYMBOLS,
        endpoint=endpoint,
        rate_limit=1000,  # the simulator is local; ccxt's defaults would throttle polling
        credentials=Credentials(
            api_key=SecretStr(key["apiKey"]),
            secret=SecretStr(key["secret"]),
            password=SecretStr(key["password"]) if key.get("password") else None,
        ),
    )


def sim_configs(server: Any) -> dict[str, VenueConfig]:
    """Venue settings for an in-process ``SimServer`` (trade-only keys)."""
    return {
        name: venue_config(
            server.venue_url(name),
            server.venues[name].protocol,
            server.key(name, withdraw=False),
        )
        for name in VENUES
    }


@asynccontextmanager
async def open_desk(
    configs: dict[str, VenueConfig],
    database_url: str,
    *,
    risk: RiskConfig = FAST_RISK,
    trace: Trace | None = None,
    recovery_s: float | None = None,
    journal: Journal | None = None,
) -> AsyncIterator[Desk]:
    """Venues with keys proven trade-only, markets loaded, a journal in a new run."""
    store = Store(database_url)
    guard = PermissionGuard(300)
    venues = {
        name: CcxtVenue(
            name,
            config,
            guard,
            exchange=build_exchange(name, config, config.credentials, websocket=False),
        )
        for name, config in configs.items()
    }
    try:
        markets: dict[tuple[str, str], Market] = {}
        for name, venue in venues.items():
            for symbol, market in (await venue.load_markets()).items():
                markets[(name, symbol)] = market
            await guard.require(name)  # the daemon proves every key before trading
        journal = journal or Journal.start_run(store, mode="live", strategy="test")
        executor = Executor(
            venues, journal, risk, markets=markets, trace=trace, recovery_s=recovery_s
        )
        yield Desk(store, journal, venues, markets, executor, guard)
    finally:
        for venue in venues.values():
            await venue.close()
        store.close()


async def cross_opportunity(
    desk: Desk,
    amount: Decimal,
    *,
    buy: str = "binance",
    sell: str = "okx",
    symbol: str = "BTC/USDT",
    slack_bps: Decimal = Decimal(10),
) -> Opportunity:
    """Buy on ``buy`` and sell on ``sell`` with limits ``slack_bps`` through the books."""
    buy_book = await desk.venues[buy].fetch_order_book(symbol, 5)
    sell_book = await desk.venues[sell].fetch_order_book(symbol, 5)
    assert buy_book.best_ask is not None
    assert sell_book.best_bid is not None
    factor = slack_bps / Decimal(10_000)
    buy_market = desk.markets[(buy, symbol)]
    sell_market = desk.markets[(sell, symbol)]
    buy_limit = buy_market.round_limit_price(
        Decimal(repr(buy_book.best_ask)) * (1 + factor), Side.BUY
    )
    sell_limit = sell_market.round_limit_price(
        Decimal(repr(sell_book.best_bid)) * (1 - factor), Side.SELL
    )
    return Opportunity(
        strategy="test",
        legs=(
            Leg(buy, symbol, Side.BUY, amount, buy_limit),
            Leg(sell, symbol, Side.SELL, amount, sell_limit),
        ),
        edge_quote=Decimal(0),
        edge_bps=Decimal(0),
        quote=QUOTE,
        created_ns=time.time_ns(),
    )


# ----- the simulator's own records -----------------------------------------------------

_STATUS = {"FILLED": "filled", "CANCELED": "canceled", "NEW": "open", "PARTIALLY_FILLED": "open"}


def sim_orders(
    server: Any, prefix: str
) -> list[tuple[str, str, str, str, Decimal, Decimal, str, Decimal]]:
    """Every order the simulator received whose client id starts with ``prefix``, as
    ``(client id, venue, symbol, side, amount, price, status, filled)`` in journal terms
    (Binance's ``EXPIRED`` is ccxt's ``expired``; OKX reports it as ``canceled``)."""
    out = []
    for name, venue in server.venues.items():
        for order in venue.orders.values():
            if order.account is None or not order.client_order_id.startswith(prefix):
                continue
            market = venue.markets[order.symbol]
            status = _STATUS.get(order.status)
            if order.status == "EXPIRED":
                status = "expired" if venue.protocol == "binance" else "canceled"
            out.append(
                (
                    order.client_order_id,
                    name,
                    order.symbol,
                    order.side,
                    market.amount(order.amount),
                    market.price(order.price) if order.price is not None else Decimal(0),
                    str(status),
                    market.amount(order.filled),
                )
            )
        for rejected in venue.rejections:
            if rejected.client_order_id.startswith(prefix):
                out.append(
                    (
                        rejected.client_order_id,
                        name,
                        rejected.symbol,
                        rejected.side,
                        Decimal(rejected.amount),
                        Decimal(rejected.price or 0),
                        "rejected",
                        Decimal(0),
                    )
                )
    return sorted(out)


def journal_orders(
    journal: Journal, run_id: int
) -> list[tuple[str, str, str, str, Decimal, Decimal, str, Decimal]]:
    return sorted(
        (
            j.order.client_order_id,
            j.order.venue,
            j.order.symbol,
            j.order.side.value,
            j.order.amount,
            j.order.price or Decimal(0),
            j.order.status.value,
            j.order.filled,
        )
        for j in journal.orders(run_id=run_id)
    )


def sim_trades(server: Any, client_ids: Iterable[str]) -> list[Any]:
    wanted = set(client_ids)
    return [
        (name, trade)
        for name, venue in server.venues.items()
        for trade in venue.trades
        if trade.account is not None and trade.client_order_id in wanted
    ]


def sim_pnl(server: Any, client_ids: Iterable[str], quote: str = QUOTE) -> Decimal:
    """Realised PnL from the simulator's trades, written out independently of arbot, for
    trades on ``X/quote`` markets: sells - buys - fees in quote (a fee in base at its
    trade's price), plus each base asset's net amount left over carried at the average
    price of that asset's trades on the side that created it."""
    trades = [t for _, t in sim_trades(server, client_ids)]
    pnl = Decimal(0)
    net: dict[str, Decimal] = {}
    for t in trades:
        base, trade_quote = t.symbol.split("/")
        assert trade_quote == quote, "sim_pnl only prices X/quote trades"
        sign = 1 if t.side == "buy" else -1
        pnl -= sign * t.amount * t.price
        net[base] = net.get(base, Decimal(0)) + sign * t.amount
        pnl -= t.fee if t.fee_asset == quote else t.fee * t.price
    for base, left in net.items():
        if left:
            side = "buy" if left > 0 else "sell"
            same = [t for t in trades if t.side == side and t.symbol.startswith(base + "/")]
            amount = sum((t.amount for t in same), Decimal(0))
            cost = sum((t.amount * t.price for t in same), Decimal(0))
            pnl += left * (cost / amount)
    return pnl


def sim_net(server: Any, client_ids: Iterable[str]) -> dict[str, Decimal]:
    """Net base bought (+) or sold (-) per base asset, from the simulator's trades."""
    net: dict[str, Decimal] = {}
    for _, t in sim_trades(server, client_ids):
        base = t.symbol.split("/")[0]
        net[base] = net.get(base, Decimal(0)) + (t.amount if t.side == "buy" else -t.amount)
    return net


def sim_base_net(server: Any, client_ids: Iterable[str]) -> Decimal:
    return sum(
        (t.amount if t.side == "buy" else -t.amount for _, t in sim_trades(server, client_ids)),
        Decimal(0),
    )


# ----- the crash-test driver -----------------------------------------------------------


def _fetch_json(url: str) -> Any:
    from urllib.request import urlopen

    with urlopen(url, timeout=10) as answer:  # 127.0.0.1 only: the test's simulator
        return json.loads(answer.read())


def _driver_configs(sim_url: str) -> dict[str, VenueConfig]:
    venues = {v["venue"]: v for v in _fetch_json(f"{sim_url}/_sim/venues")}
    keys = [k for k in _fetch_json(f"{sim_url}/_sim/keys") if "withdraw" not in k["permissions"]]
    return {
        name: venue_config(
            venues[name]["endpoint"],
            venues[name]["protocol"],
            next(k for k in keys if k["venue"] == name),
        )
        for name in VENUES
    }


async def _child(
    configs: dict[str, VenueConfig], db: str, job: dict[str, Any], ready_fd: int
) -> None:
    steps = 0
    kill_at = job.get("kill_at")

    def trace(point: str, order: object) -> None:
        nonlocal steps
        steps += 1
        if kill_at is not None and steps >= kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    risk = RiskConfig(
        order_timeout_s=2.0,
        unwind_attempts=2,
        unwind_backoff_ms=5.0,
        max_unwind_loss_bps=Decimal(50),
    )
    async with open_desk(configs, f"sqlite:///{db}", risk=risk, trace=trace) as desk:
        os.write(ready_fd, json.dumps({"run_id": desk.journal.run_id}).encode() + b"\n")
        for index in range(int(job.get("opportunities", 3))):
            buy, sell = ("binance", "okx") if index % 2 == 0 else ("okx", "binance")
            opportunity = await cross_opportunity(
                desk, Decimal(job.get("amount", "0.0004")), buy=buy, sell=sell
            )
            await desk.executor.execute(opportunity)


def _serve(sim_url: str, db: str) -> None:
    """Fork one child per job line; answer with how it ended."""
    configs = _driver_configs(sim_url)
    for name, config in configs.items():  # import and set up ccxt once, not in every child
        build_exchange(name, config, config.credentials, websocket=False)
    for line in sys.stdin:
        job = json.loads(line)
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: trade until killed (or done)
            os.close(read_fd)
            code = 0
            try:
                asyncio.run(_child(configs, db, job, write_fd))
            except BaseException as exc:  # report, then leave without running atexit hooks
                print(f"child error: {exc!r}", file=sys.stderr, flush=True)
                code = 1
            os._exit(code)
        os.close(write_fd)
        forked = time.monotonic()
        ready_s = None
        run_id = None
        ready, _, _ = select.select([read_fd], [], [], 30)
        if ready:
            text = os.read(read_fd, 4096).decode()
            if text.strip():
                run_id = json.loads(text.splitlines()[0])["run_id"]
                ready_s = round(time.monotonic() - forked, 3)
        kill_after_ms = job.get("kill_after_ms")
        if kill_after_ms is not None and run_id is not None:
            time.sleep(kill_after_ms / 1000.0)  # this process does nothing else meanwhile
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        os.close(read_fd)
        killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        answer = {
            "run_id": run_id,
            "killed": killed,
            "exit_code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
            "ready_s": ready_s,
            "total_s": round(time.monotonic() - forked, 3),
        }
        print(json.dumps(answer), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sim-url", required=True)
    parser.add_argument("--db", required=True)
    args = parser.parse_args()
    if not args.sim_url.startswith("http://127.0.0.1:"):
        raise SystemExit("the driver only talks to a local simulator")
    _serve(args.sim_url, args.db)


if __name__ == "__main__":
    main()
