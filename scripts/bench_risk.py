#!/usr/bin/env python3
"""How long does a risk check take? Target: a 2-leg check costs <= 1.5x building the
opportunity it checks (about 4-6 us on the 2-core dev box).

The risk check sits on the hot path between a strategy's proposal and the first order,
so it is timed per call, in-process, for the shapes that matter:

* a 2-leg cross-exchange opportunity, approved (every check runs), paper and live
  (the live one also reads the permission guard's proofs);
* a 3-leg triangular opportunity on one venue whose ETH/BTC leg is valued in USDT;
* rejections by the first check (kill switch) and by the last (insufficient balance);
* the whole accounting cycle: ``admit`` (check + reserve) then ``release``.

Baselines measured in the same run: ``Market.order_problem`` on both legs (the grid
and minimum checks alone, which any risk layer must make) and building the 2-leg
``Opportunity`` itself (what the strategy allocates per proposal). Times are medians
of ``--repeats`` runs of ``--number`` calls; the ratios (against each baseline) are what
to compare across machines and loads.

    python scripts/bench_risk.py [--repeats 7] [--number 20000] [--json] [--check]

``--check`` exits 1 when the 2-leg approved check misses the target ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import timeit
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from arbot.config import RiskConfig
from arbot.engine.kill_switch import KillSwitch
from arbot.engine.risk import RiskEngine
from arbot.keys.guard import PermissionGuard
from arbot.keys.model import KeyPermissions
from arbot.model import BookStamp, Leg, Market, Opportunity, OrderBook, Side
from arbot.strategy.context import MarketState

TARGET_RATIO = 1.5
D = Decimal
NOW = 1_700_000_000 * 10**9


def clock() -> int:
    return NOW


def build_state() -> MarketState:
    def market(venue: str, symbol: str, tick: str, lot: str, min_notional: str) -> Market:
        base, quote = symbol.split("/")
        return Market(
            venue, symbol, base, quote, D(tick), D(lot), D(lot), D(min_notional), None, D("0.001")
        )

    state = MarketState(
        [
            market("a", "BTC/USDT", "0.01", "0.00001", "5"),
            market("b", "BTC/USDT", "0.01", "0.00001", "5"),
            market("a", "ETH/BTC", "0.00001", "0.0001", "0.0001"),
            market("a", "ETH/USDT", "0.01", "0.0001", "5"),
        ],
        clock=clock,
    )
    for (venue, symbol), market_ in list(state.markets.items()):
        mid = {"BTC/USDT": 60000.0, "ETH/BTC": 0.05, "ETH/USDT": 3000.0}[symbol]
        state.books[(venue, symbol)] = OrderBook(
            venue, symbol, [(mid, 1.0)], [(mid * 1.0001, 1.0)], received_ns=NOW - 10**6
        )
        assert market_.venue == venue
    for venue in ("a", "b"):
        for asset, amount in (("USDT", 10**6), ("BTC", 10), ("ETH", 100)):
            state.set_balance(venue, asset, D(amount))
    return state


def cross() -> Opportunity:
    return Opportunity(
        "cross",
        (
            Leg("a", "BTC/USDT", Side.BUY, D("0.01"), D("60001.00")),
            Leg("b", "BTC/USDT", Side.SELL, D("0.01"), D("60100.00")),
        ),
        D("0.8"),
        D("13.3"),
        "USDT",
        NOW,
        (
            BookStamp("a", "BTC/USDT", None, NOW - 10**6),
            BookStamp("b", "BTC/USDT", None, NOW - 10**6),
        ),
    )


def triangle() -> Opportunity:
    return Opportunity(
        "triangular",
        (
            Leg("a", "BTC/USDT", Side.SELL, D("0.005"), D("60000.00")),
            Leg("a", "ETH/BTC", Side.BUY, D("0.1"), D("0.05001")),
            Leg("a", "ETH/USDT", Side.SELL, D("0.1"), D("3000.00")),
        ),
        D("0.1"),
        D("3.3"),
        "USDT",
        NOW,
    )


def engine(state: MarketState, **kw: Any) -> RiskEngine:
    config = RiskConfig(max_orders_per_second=10**9)
    return RiskEngine(config, state, kill_switch=KillSwitch(None), clock=clock, **kw)


def live_guard() -> PermissionGuard:
    guard = PermissionGuard(10**9, clock=lambda: 0.0, warn=lambda _: None)

    async def trade_only() -> KeyPermissions:
        return KeyPermissions(True, True, False, False, None)

    async def prove() -> None:
        for venue in ("a", "b"):
            guard.register(venue, trade_only)
            await guard.check(venue)

    asyncio.run(prove())
    return guard


def per_call_us(fn: Callable[[], object], number: int, repeats: int) -> float:
    fn()
    times = timeit.repeat(fn, number=number, repeat=repeats)
    return statistics.median(times) / number * 1e6


def cases() -> dict[str, Callable[[], object]]:
    state = build_state()
    opp, tri = cross(), triangle()
    paper = engine(state, mode="paper")
    live = engine(state, mode="live", guard=live_guard())
    halted = engine(state, mode="paper")
    halted.kill_switch.trip("bench", "operator")
    poor_state = build_state()
    poor_state.set_balance("b", "BTC", D("0.001"))
    poor = engine(poor_state, mode="paper")
    cycling = engine(state, mode="paper")
    for risk, o in ((paper, opp), (live, opp), (paper, tri), (cycling, opp)):
        assert risk.check(o).approved, risk.check(o)
    assert halted.check(opp).reason == "kill_switch"
    assert poor.check(opp).reason == "insufficient_balance"
    market = state.markets[("a", "BTC/USDT")]
    buy, sell = opp.legs

    def cycle() -> None:
        _, reservation = cycling.admit(opp)
        assert reservation is not None
        cycling.release(reservation)

    return {
        "baseline: order_problem x2": lambda: (
            market.order_problem(buy.amount, buy.limit_price),
            market.order_problem(sell.amount, sell.limit_price),
        ),
        "baseline: build 2-leg opportunity": cross,
        "check 2-leg approved (paper)": lambda: paper.check(opp),
        "check 2-leg approved (live)": lambda: live.check(opp),
        "check 3-leg triangular approved": lambda: paper.check(tri),
        "check rejected: kill_switch": lambda: halted.check(opp),
        "check rejected: insufficient_balance": lambda: poor.check(opp),
        "admit + release 2-leg": cycle,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--number", type=int, default=20_000, help="calls per repeat")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--check", action="store_true", help="exit 1 if the target is missed")
    args = parser.parse_args()

    results = {name: per_call_us(fn, args.number, args.repeats) for name, fn in cases().items()}
    grid = results["baseline: order_problem x2"]
    build = results["baseline: build 2-leg opportunity"]
    headline = results["check 2-leg approved (paper)"]
    ratio = headline / build
    if args.json:
        print(
            json.dumps(
                {"us_per_call": results, "ratio_to_build": ratio, "target_ratio": TARGET_RATIO},
                indent=2,
            )
        )
    else:
        print(f"{'case':<40} {'us/call':>8} {'x grid':>7} {'x build':>8}")
        for name, us in results.items():
            print(f"{name:<40} {us:8.2f} {us / grid:7.2f} {us / build:8.2f}")
        verdict = "PASS" if ratio <= TARGET_RATIO else "FAIL"
        print(
            f"2-leg check {headline:.2f} us = {ratio:.2f}x building the opportunity, "
            f"target <= {TARGET_RATIO}x: {verdict}"
        )
    return 1 if args.check and ratio > TARGET_RATIO else 0


if __name__ == "__main__":
    sys.exit(main())
