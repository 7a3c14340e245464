#!/usr/bin/env python3
"""How long does ``Triangular.on_book`` take on a 1,500-market venue? Target: median <= 50 us.

Builds a synthetic venue: six quote assets (USDT, USDC, EUR, BTC, ETH, BNB, with the
markets between them) and about 600 base assets, each listed against USDT and a random
few of the other quotes, 1,500 markets in all; ticks are about 1e-4 of the price, a lot
is worth $0.1 to $1, taker fee 10 bps. Every asset has a hidden fair value; each book
update draws a mid from the fair cross rate plus a few bps of noise, a spread of about
2 bps and five levels a side. Rarely (``--dislocation-rate``) an update moves a market
by 60-120 bps, which makes a few cycles profitable after fees, and the same market is
repaired by an update a few updates later, as other arbitrageurs would do.

The updates are applied to a ``MarketState`` (not timed) and ``on_book`` is timed with
``perf_counter_ns``, after warming up with one update per market. Next to it, in the
same run, the full-recomputation baseline: per update, rebuild every edge weight
(``-log`` of the top-of-book rate after fees) from the current books and run
Bellman-Ford negative-cycle detection over the whole graph (virtual source, early exit
when a pass relaxes nothing; a pass V still relaxing means a negative cycle). It is
slow, so it is timed on every ``--baseline-every``-th update only. The ratio is the
baseline median over the strategy median.

    python scripts/bench_strategy_triangular.py [--updates 20000] [--json] [--check]

``--check`` exits 1 when the median misses the target.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import time
from decimal import Decimal

from arbot.feeds.book_feed import BookUpdate
from arbot.model import Balance, Level, Market
from arbot.strategy.context import MarketState
from strategies.triangular import Triangular

TARGET_US = 50.0
VENUE = "synth"
FEE = Decimal("0.001")
QUOTES = {"USDT": 1.0, "USDC": 1.0001, "EUR": 1.08, "BTC": 60_000.0, "ETH": 3_000.0, "BNB": 600.0}
QUOTE_MARKETS = [
    ("USDC", "USDT"),
    ("EUR", "USDT"),
    ("BTC", "USDT"),
    ("ETH", "USDT"),
    ("BNB", "USDT"),
    ("BTC", "USDC"),
    ("ETH", "USDC"),
    ("BTC", "EUR"),
    ("ETH", "EUR"),
    ("ETH", "BTC"),
    ("BNB", "BTC"),
    ("BNB", "ETH"),
]
OTHER_QUOTES = {"BTC": 0.5, "ETH": 0.35, "BNB": 0.25, "USDC": 0.3, "EUR": 0.1}


def _decimals(value: float) -> int:
    """Digits after the point of the power of ten at or below ``value``."""
    return -math.floor(math.log10(value))


def build_venue(rng: random.Random, n_markets: int) -> tuple[list[Market], dict[str, float]]:
    fair = dict(QUOTES)
    pairs = list(QUOTE_MARKETS)
    n = 0
    while len(pairs) < n_markets:
        base = f"X{n:03d}"
        n += 1
        fair[base] = 10 ** rng.uniform(-4, 3)
        pairs.append((base, "USDT"))
        for quote, chance in OTHER_QUOTES.items():
            if len(pairs) < n_markets and rng.random() < chance:
                pairs.append((base, quote))
    markets = []
    for base, quote in pairs:
        price = fair[base] / fair[quote]
        tick = Decimal(1).scaleb(-(_decimals(price) + 4))  # about 5 significant digits
        step = Decimal(1).scaleb(-_decimals(1.0 / fair[base]))  # a lot is worth $0.1 to $1
        markets.append(Market(VENUE, f"{base}/{quote}", base, quote, tick, step, taker_fee=FEE))
    return markets, fair


def make_book(
    rng: random.Random, market: Market, fair: dict[str, float], shift: float, stamp: int
) -> BookUpdate:
    places = -int(market.price_tick.as_tuple().exponent)
    tick = float(market.price_tick)
    mid = fair[market.base] / fair[market.quote] * (1.0 + rng.gauss(0.0, 3e-4) + shift)
    half = max(mid * 1e-4, tick)
    bid = round(mid - half, places)
    ask = round(max(mid + half, bid + tick), places)
    usd = fair[market.quote]
    bids: list[Level] = []
    asks: list[Level] = []
    for k in range(5):
        gap = k * max(mid * 2e-4, tick)
        for levels, price in ((bids, round(bid - gap, places)), (asks, round(ask + gap, places))):
            notional_usd = 10 ** rng.uniform(2.5, 4)
            levels.append((price, round(notional_usd / usd / price, 8) or 1e-8))
    return BookUpdate(VENUE, market.symbol, bids, asks, stamp, stamp, stamp)


def make_updates(
    rng: random.Random, markets: list[Market], fair: dict[str, float], count: int, rate: float
) -> list[BookUpdate]:
    repairs: dict[int, int] = {}  # update number -> market to repair
    updates = []
    for k in range(count):
        m = repairs.pop(k, None)
        shift = 0.0
        if m is None:
            m = rng.randrange(len(markets))
            if rng.random() < rate:
                shift = rng.choice((-1, 1)) * rng.uniform(0.006, 0.012)
                repairs.setdefault(k + rng.randint(1, 20), m)
        updates.append(make_book(rng, markets[m], fair, shift, k + 1))
    return updates


def bellman_ford_has_negative_cycle(state: MarketState, markets: list[Market]) -> bool:
    """Full recomputation: every weight from the books, then Bellman-Ford."""
    ids: dict[str, int] = {}
    edges: list[tuple[int, int, float]] = []
    for market in markets:
        book = state.books.get((market.venue, market.symbol))
        if book is None:
            continue
        keep = 1.0 - float(market.taker_fee)
        base = ids.setdefault(market.base, len(ids))
        quote = ids.setdefault(market.quote, len(ids))
        if book.asks:
            edges.append((quote, base, -math.log(keep / book.asks[0][0])))
        if book.bids:
            edges.append((base, quote, -math.log(book.bids[0][0] * keep)))
    dist = [0.0] * len(ids)
    for _ in range(len(ids)):
        changed = False
        for u, v, w in edges:
            candidate = dist[u] + w
            if candidate < dist[v] - 1e-12:
                dist[v] = candidate
                changed = True
        if not changed:
            return False
    return True


def percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(args: argparse.Namespace) -> dict[str, object]:
    rng = random.Random(args.seed)
    markets, fair = build_venue(rng, args.markets)
    starts = [a for a in args.start_assets.split(",") if a]
    balances = [Balance(VENUE, asset, Decimal(10_000) / Decimal(fair[asset])) for asset in starts]
    state = MarketState(markets, balances=balances, clock=lambda: 0, max_book_age_ms=math.inf)
    ctx = state.context()
    strategy = Triangular.from_params(
        {
            "start_assets": starts,
            "max_cycle_length": args.max_cycle_length,
            "max_opportunities": args.max_opportunities,
        }
    )
    assert isinstance(strategy, Triangular)
    wanted = set(strategy.books(state.markets))
    started = time.perf_counter()
    strategy.on_start(ctx)
    index_s = time.perf_counter() - started
    per_market = [n for n in strategy.cycles_per_market().values() if n]

    for market in markets:  # warm-up: one book per market
        update = make_book(rng, market, fair, 0.0, 0)
        state.apply(update)
        if (VENUE, market.symbol) in wanted:
            strategy.on_book(update, ctx)
    updates = make_updates(rng, markets, fair, args.updates, args.dislocation_rate)

    times: list[float] = []
    baseline: list[float] = []
    found = hits = negative = 0
    clock = time.perf_counter_ns
    for k, update in enumerate(updates):
        state.apply(update)
        if (VENUE, update.symbol) in wanted:
            t0 = clock()
            result = strategy.on_book(update, ctx)
            times.append((clock() - t0) / 1000.0)
            found += len(result)
            hits += bool(result)
        if k % args.baseline_every == 0:
            t0 = clock()
            negative += bellman_ford_has_negative_cycle(state, markets)
            baseline.append((clock() - t0) / 1000.0)

    times.sort()
    baseline.sort()
    median = statistics.median(times)
    base_median = statistics.median(baseline)
    return {
        "markets": len(markets),
        "markets_in_cycles": len(wanted),
        "cycles": strategy.cycle_count,
        "cycles_per_market_median": statistics.median(per_market),
        "cycles_per_market_max": max(per_market),
        "index_build_s": round(index_s, 3),
        "updates": len(times),
        "updates_with_opportunities": hits,
        "opportunities": found,
        "median_us": round(median, 2),
        "p99_us": round(percentile(times, 0.99), 2),
        "max_us": round(times[-1], 2),
        "baseline_updates": len(baseline),
        "baseline_median_us": round(base_median, 1),
        "baseline_p99_us": round(percentile(baseline, 0.99), 1),
        "baseline_negative_cycles": negative,
        "ratio": round(base_median / median, 1),
        "target_median_us": TARGET_US,
        "pass": median <= TARGET_US,
    }


def print_report(r: dict[str, object]) -> None:
    print(
        f"venue: {r['markets']} markets ({r['markets_in_cycles']} in cycles), {r['cycles']} "
        f"cycles, cycles per market median {r['cycles_per_market_median']} max "
        f"{r['cycles_per_market_max']}, index built in {r['index_build_s']} s"
    )
    print(f"{'':<34} {'updates':>8} {'median us':>10} {'p99 us':>10}")
    print(f"{'Triangular.on_book':<34} {r['updates']:>8} {r['median_us']:>10} {r['p99_us']:>10}")
    print(
        f"{'Bellman-Ford, full recomputation':<34} {r['baseline_updates']:>8} "
        f"{r['baseline_median_us']:>10} {r['baseline_p99_us']:>10}"
    )
    print(
        f"baseline / on_book (medians): {r['ratio']}x; baseline runs that found a negative "
        f"cycle: {r['baseline_negative_cycles']}"
    )
    print(
        f"updates with opportunities: {r['updates_with_opportunities']} "
        f"({r['opportunities']} opportunities)"
    )
    verdict = "PASS" if r["pass"] else "FAIL"
    print(f"on_book median {r['median_us']} us, target <= {TARGET_US} us: {verdict}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markets", type=int, default=1500, help="markets (default 1500)")
    parser.add_argument("--updates", type=int, default=20_000, help="timed updates (20000)")
    parser.add_argument(
        "--baseline-every", type=int, default=500, help="time the baseline every N updates (500)"
    )
    parser.add_argument(
        "--dislocation-rate", type=float, default=0.002, help="chance per update (0.002)"
    )
    parser.add_argument(
        "--start-assets", default="USDT,BTC,ETH", help="comma-separated (USDT,BTC,ETH)"
    )
    parser.add_argument("--max-cycle-length", type=int, choices=(3, 4), default=3)
    parser.add_argument(
        "--max-opportunities", type=int, default=None, help="strategy parameter (unbounded)"
    )
    parser.add_argument("--seed", type=int, default=7, help="random seed (7)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--check", action="store_true", help="exit 1 if the target is missed")
    args = parser.parse_args()
    report = run(args)
    if args.json:
        print(json.dumps(report))
    else:
        print_report(report)
    return 1 if args.check and not report["pass"] else 0


if __name__ == "__main__":
    sys.exit(main())
