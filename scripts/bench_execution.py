#!/usr/bin/env python3
"""Book update to order at the exchange: how long? Target: median <= 3 ms over loopback.

What is timed, per opportunity: from the moment a book update arrives in the engine
(``time.time_ns()`` just before it is applied to the ``MarketState``) to the moment the
first of the opportunity's orders reaches the simulator (``SimVenue.arrivals_ns``: the
simulator's ``time.time_ns()`` when the order reaches its matching code, after the
protocol parsed and authenticated the request; both processes read the same system
clock). In between, the real components, in the order the daemon runs them:

1. ``MarketState.apply`` and ``CrossExchange.on_book`` (the built-in strategy);
2. ``RiskEngine.admit`` (every risk check, and the reservation), ``live`` mode with the
   real permission guard's proofs;
3. ``Executor.execute``: the opportunity row and both legs written ``pending`` to the
   journal in one committed SQLite transaction (WAL, the store's default
   ``synchronous=FULL``), then both legs sent at once through ``CcxtVenue`` (permission
   guard, REST gate, ccxt signing, aiohttp) to the simulator over loopback.

The simulator runs in a child process pinned to one CPU, the engine on another, with
the makers stopped (books frozen). The engine is fed synthetic book updates for
``BTC/USDT`` on ``binance`` and ``okx``: for each opportunity one venue's book drops
3 % below the other's (a timed update that yields exactly one opportunity), then
recovers (an untimed update that yields none). The synthetic prices sit far from the
simulator's real books, so the IOC legs expire unfilled: balances stay put, and the
executor's full path (answers, journal updates, outcome) still runs after each send.

Baseline, measured in the same run and interleaved with the opportunities: a plain
ccxt ``create_order`` (the same guarded ccxt class, no arbot code in between) of the
same kind of IOC order, from just before the call to the order's arrival. The ratio is
the pipeline's median over the baseline's: what arbot adds to sending an order.

    python scripts/bench_execution.py [--opportunities 1000] [--warmup 50] [--json] [--check]

``--check`` exits 1 when the median misses the target.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.request import urlopen

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TARGET_MS = 3.0
SYMBOL = "BTC/USDT"
VENUES = ("binance", "okx")
HOST = "127.0.0.1"
PR_SET_PDEATHSIG = 1


# ----- the simulator process ---------------------------------------------------------


def serve() -> int:
    """Run the default simulator with frozen books and an arrival-time endpoint."""
    from aiohttp import web

    from arbot.sim.config import load_sim_config
    from arbot.sim.server import SimServer

    async def main() -> None:
        server = SimServer(load_sim_config())
        for name in server.venues:
            server.rates[name] = 0

        async def arrivals(request: web.Request) -> web.Response:
            venue = server.venues[request.query["venue"]]
            return web.json_response(venue.arrivals_ns)

        server.app.router.add_get("/_bench/arrivals", arrivals)
        port = await server.start(port=0)
        print(json.dumps({"port": port}), flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        await server.close()

    asyncio.run(main())
    return 0


def _child_setup(cpu: int) -> Callable[[], None]:
    def setup() -> None:
        os.sched_setaffinity(0, {cpu})
        with contextlib.suppress(OSError, AttributeError):
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)

    return setup


def start_simulator(cpu: int) -> tuple[subprocess.Popen[bytes], str]:
    proc = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--serve"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=_child_setup(cpu),  # noqa: PLW1509 - spawned before any thread exists
    )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 60.0)
    line = proc.stdout.readline() if ready else b""
    if not line:
        proc.kill()
        raise RuntimeError(f"the simulator did not start (exit code {proc.poll()})")
    return proc, f"http://{HOST}:{json.loads(line)['port']}"


def get_json(url: str) -> Any:
    with urlopen(url, timeout=30) as answer:  # the local simulator only
        return json.loads(answer.read())


# ----- the engine side ---------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median": statistics.median(values),
        "p90": percentile(values, 0.90),
        "p99": percentile(values, 0.99),
        "max": max(values),
    }


def ladder(low: float, high: float, tick: float) -> tuple[list[Any], list[Any]]:
    """Five levels a side: best bid ``low``, best ask ``high``, 0.001 BTC each."""
    bids = [(round(low - k * tick, 2), 0.001) for k in range(5)]
    asks = [(round(high + k * tick, 2), 0.001) for k in range(5)]
    return bids, asks


async def run(args: argparse.Namespace, base_url: str) -> dict[str, Any]:  # noqa: PLR0915
    from pydantic import SecretStr

    from arbot.config import RiskConfig, VenueConfig
    from arbot.engine.executor import Executor
    from arbot.engine.journal import Journal
    from arbot.engine.kill_switch import KillSwitch
    from arbot.engine.risk import RiskEngine
    from arbot.feeds.book_feed import BookUpdate
    from arbot.keys.credentials import Credentials
    from arbot.keys.guard import PermissionGuard
    from arbot.model import Market, Order, Side
    from arbot.store import Store
    from arbot.strategy.context import MarketState
    from arbot.venues.ccxt_venue import CcxtVenue
    from arbot.venues.factory import build_exchange
    from strategies.cross_exchange import CrossExchange

    listed = {v["venue"]: v for v in get_json(f"{base_url}/_sim/venues")}
    keys = [k for k in get_json(f"{base_url}/_sim/keys") if "withdraw" not in k["permissions"]]
    configs = {}
    for name in VENUES:
        key = next(k for k in keys if k["venue"] == name)
        configs[name] = VenueConfig(
            exchange=listed[name]["protocol"],
            symbols=[SYMBOL],
            endpoint=listed[name]["endpoint"],
            rate_limit=100_000,  # a local simulator: no throttling in the measurement
            credentials=Credentials(
                api_key=SecretStr(key["apiKey"]),
                secret=SecretStr(key["secret"]),
                password=SecretStr(key["password"]) if key.get("password") else None,
            ),
        )
    workdir = tempfile.mkdtemp(prefix="bench_execution_")
    store = Store(f"sqlite:///{workdir}/arbot.db")
    guard = PermissionGuard(3600)
    venues = {
        name: CcxtVenue(
            name,
            config,
            guard,
            exchange=build_exchange(name, config, config.credentials, websocket=False),
        )
        for name, config in configs.items()
    }
    raw = {
        name: build_exchange(name, config, config.credentials, websocket=False)
        for name, config in configs.items()
    }
    try:
        markets: dict[tuple[str, str], Market] = {}
        balances = []
        mids = []
        for name, venue in venues.items():
            markets[(name, SYMBOL)] = (await venue.load_markets())[SYMBOL]
            await guard.require(name)
            balances += list((await venue.fetch_balances()).values())
            book = await venue.fetch_order_book(SYMBOL, 5)
            assert book.mid is not None
            mids.append(book.mid)
            await raw[name].load_markets()
        price = statistics.mean(mids)
        tick = float(markets[(VENUES[0], SYMBOL)].price_tick)
        journal = Journal.start_run(store, mode="live", strategy="cross_exchange")
        risk = RiskConfig(
            max_book_age_ms=60_000,
            max_order_notional=Decimal(1000),
            max_symbol_notional=Decimal(10**9),
            max_open_exposure=Decimal(10**9),
            max_orders_per_second=100_000,
            max_daily_loss=Decimal(10**9),
            max_consecutive_failures=10**9,  # every bench opportunity "fails" (nothing fills)
            order_timeout_s=5.0,
        )
        state = MarketState(markets.values(), balances=balances, max_book_age_ms=60_000)
        ctx = state.context()
        risk_engine = RiskEngine(
            risk,
            state,
            mode="live",
            kill_switch=KillSwitch(store, run_id=journal.run_id),
            guard=guard,
        )
        strategy = CrossExchange.from_params(
            {"min_edge_bps": 5.0, "max_notional_quote": 30.0, "symbols": [SYMBOL]}
        )
        strategy.on_start(ctx)
        stamps: dict[str, int] = {}

        def trace(point: str, order: Order | None) -> None:
            if point not in stamps:
                stamps[point] = time.time_ns()

        executor = Executor(venues, journal, risk, markets=markets, books=state, trace=trace)
        high = ladder(price * 1.030, price * 1.030 + tick, tick)
        low = ladder(price * 0.970 - tick, price * 0.970, tick)
        for name in VENUES:  # both books "high": no opportunity
            state.apply(BookUpdate(name, SYMBOL, *high, None, time.time_ns(), None))
        rows: list[dict[str, int]] = []
        baseline_sent: dict[str, int] = {}
        total = args.warmup + args.opportunities
        bad = 0
        for k in range(total):
            name = VENUES[k % 2]
            update = BookUpdate(name, SYMBOL, *low, None, 0, None)
            stamps.clear()
            t0 = update.received_ns = time.time_ns()  # the update arrives
            state.apply(update)
            found = strategy.on_book(update, ctx)
            t1 = time.time_ns()
            if len(found) != 1:
                bad += 1
                continue
            verdict, reservation = risk_engine.admit(found[0])
            t2 = time.time_ns()
            if reservation is None:
                raise RuntimeError(f"risk rejected a bench opportunity: {verdict}")
            result = await executor.execute(found[0])
            risk_engine.settle(
                reservation, result.outcome.value, realized_pnl=result.realised_pnl_quote
            )
            if k >= args.warmup:
                rows.append(
                    {
                        "t0": t0,
                        "t1": t1,
                        "t2": t2,
                        "pending": stamps["pending"],
                        "send": stamps["send"],
                        "answer": stamps["answer"],
                        "updated": stamps["updated"],
                        "opportunity_id": result.opportunity_id,
                        "run_id": journal.run_id,
                    }
                )
            recover = BookUpdate(name, SYMBOL, *high, None, time.time_ns(), None)
            state.apply(recover)
            if strategy.on_book(recover, ctx):
                bad += 1
            # the baseline: the same kind of order through plain ccxt
            cid = f"bench{k}"
            limit = float(
                markets[(name, SYMBOL)].round_limit_price(Decimal(repr(low[1][0][0])), Side.BUY)
            )
            sent = time.time_ns()
            await raw[name].create_order(
                SYMBOL, "limit", "buy", 0.0005, limit, {"clientOrderId": cid, "timeInForce": "IOC"}
            )
            if k >= args.warmup:
                baseline_sent[cid] = sent
        arrivals: dict[str, int] = {}
        for name in VENUES:
            arrivals.update(get_json(f"{base_url}/_bench/arrivals?venue={name}"))
        from arbot.engine import ids

        to_ms = 1e-6
        pipeline, strategy_ms, risk_ms, journal_ms, to_send_ms, wire_ms = [], [], [], [], [], []
        update_ms, last_leg = [], []
        for row in rows:
            legs = [ids.entry_id(row["run_id"], row["opportunity_id"], leg) for leg in (0, 1)]
            first = min(arrivals[cid] for cid in legs)
            pipeline.append((first - row["t0"]) * to_ms)
            last_leg.append((max(arrivals[cid] for cid in legs) - row["t0"]) * to_ms)
            strategy_ms.append((row["t1"] - row["t0"]) * to_ms)
            risk_ms.append((row["t2"] - row["t1"]) * to_ms)
            journal_ms.append((row["pending"] - row["t2"]) * to_ms)
            to_send_ms.append((row["send"] - row["pending"]) * to_ms)
            wire_ms.append((first - row["send"]) * to_ms)
            update_ms.append((row["updated"] - row["answer"]) * to_ms)
        baseline = [(arrivals[cid] - sent) * to_ms for cid, sent in baseline_sent.items()]
        median = statistics.median(pipeline)
        return {
            "opportunities": len(pipeline),
            "target_median_ms": TARGET_MS,
            "pipeline_ms": summary(pipeline),
            "last_leg_ms": summary(last_leg),
            "breakdown_median_ms": {
                "strategy_on_book": statistics.median(strategy_ms),
                "risk_admit": statistics.median(risk_ms),
                "journal_opportunity_and_pending_legs_commit": statistics.median(journal_ms),
                "executor_to_first_send": statistics.median(to_send_ms),
                "first_send_to_arrival": statistics.median(wire_ms),
            },
            "journal_commit_ms": summary(journal_ms),
            "journal_order_update_ms": summary(update_ms),
            "baseline_ccxt_create_order_to_arrival_ms": summary(baseline),
            "ratio_to_baseline": median / statistics.median(baseline),
            "unexpected_updates": bad,
            "passed": median <= TARGET_MS,
        }
    finally:
        for venue in venues.values():
            await venue.close()
        for exchange in raw.values():
            await exchange.close()
        store.close()


def print_table(result: dict[str, Any]) -> None:
    p = result["pipeline_ms"]
    b = result["baseline_ccxt_create_order_to_arrival_ms"]
    print(f"opportunities timed: {result['opportunities']}")
    print(
        f"book update -> first leg at the simulator: median {p['median']:.3f} ms, "
        f"p90 {p['p90']:.3f}, p99 {p['p99']:.3f}, max {p['max']:.3f} "
        f"(target median <= {result['target_median_ms']} ms)"
    )
    last = result["last_leg_ms"]
    print(
        f"book update -> last leg at the simulator:  median {last['median']:.3f} ms, "
        f"p99 {last['p99']:.3f}"
    )
    print("  median breakdown (first leg):")
    for name, value in result["breakdown_median_ms"].items():
        print(f"    {name:<46} {value:8.3f} ms")
    j = result["journal_commit_ms"]
    u = result["journal_order_update_ms"]
    print(f"  journal commit (opportunity + legs): median {j['median']:.3f} ms, p99 {j['p99']:.3f}")
    print(f"  journal order update (after answer): median {u['median']:.3f} ms, p99 {u['p99']:.3f}")
    print(
        f"baseline, plain ccxt create_order -> arrival: median {b['median']:.3f} ms, "
        f"p99 {b['p99']:.3f}"
    )
    print(f"ratio (pipeline median / baseline median): {result['ratio_to_baseline']:.2f}")
    print("PASS" if result["passed"] else "FAIL")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--opportunities", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--check", action="store_true", help="exit 1 if the target is missed")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        return serve()
    if args.opportunities < 1 or args.warmup < 0:
        parser.error("--opportunities must be >= 1 and --warmup >= 0")
    cpus = sorted(os.sched_getaffinity(0))
    server_cpu = cpus[-1]
    client_cpus = {c for c in cpus if c != server_cpu} or {server_cpu}
    os.sched_setaffinity(0, client_cpus)
    sim, base_url = start_simulator(server_cpu)
    try:
        result = asyncio.run(run(args, base_url))
    finally:
        sim.send_signal(signal.SIGTERM)
        try:
            sim.wait(timeout=10)
        except subprocess.TimeoutExpired:
            sim.kill()
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)
    return 1 if args.check and not result["passed"] else 0


if __name__ == "__main__":
    sys.exit(main())
