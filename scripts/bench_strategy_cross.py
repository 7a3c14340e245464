#!/usr/bin/env python3
"""How long does ``CrossExchange.on_book`` take? Target: median <= 20 us with 2 venues.

One symbol (BTC/USDT-like: price about 60,000, tick 0.1, lot 0.0001, taker fee 10 bps)
listed on 2, 5 and 10 venues, 20 levels a side. A hidden fair price follows a random
walk; each update redraws one random venue's book around the fair price plus that
venue's own slowly mean-reverting basis (a few bps), with a spread of about 1 bp,
level gaps of 1-3 ticks and sizes of $300-$30,000. Rarely (``--dislocation-rate``) an
update moves a venue's book 20-60 bps away, so it crosses the others after fees and
the strategy proposes an opportunity; a later update of that venue repairs it. Every
venue holds plenty of both assets, so sizes are bounded by the books.

Method: the updates are generated first, then applied to a ``MarketState`` one by one
(not timed) and ``on_book`` is timed with ``perf_counter_ns`` around the call, after a
warm-up pass of ``--warmup`` updates, with the garbage collector disabled while timing
(``gc.collect()`` first). Reported: median, p99 and max in microseconds over all updates; the p99
of the updates that proposed nothing (the hot path proper); how many updates proposed
an opportunity and their median (the rare path: the float size search, the exact
``Decimal`` check of the chosen size and the opportunity; a 25+ bps dislocation of a
book whose 20 levels span under 1 bp sweeps whole books, the worst case for it).

Baseline, measured in the same run (``naive_full_recomputation`` below, *not* the
strategy): on an update it converts every book of every symbol to ``Decimal``, and for
every ordered venue pair evaluates, in exact ``Decimal`` maths, every candidate size at
a level boundary of either ladder (floored to the lot), walking both books for each,
and keeps the most profitable one that clears the edge. It is slow, so it is timed on
``--baseline-samples`` updates spread over the run; the ratio is the baseline median
over the strategy median.

    python scripts/bench_strategy_cross.py [--venues 2,5,10] [--updates 20000] [--json] [--check]

``--check`` exits 1 when the 2-venue median misses the target.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import sys
import time
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from arbot.feeds.book_feed import BookUpdate
from arbot.model import Balance, Level, Market, OrderBook
from arbot.strategy.context import MarketState
from strategies.cross_exchange import CrossExchange

TARGET_US = 20.0
TARGET_VENUES = 2
SYMBOL = "BTC/USDT"
PRICE = 60_000.0
TICK = Decimal("0.1")
STEP = Decimal("0.0001")
FEE = Decimal("0.001")
MIN_EDGE_BPS = 5.0


def venue_names(n: int) -> list[str]:
    return [f"v{k}" for k in range(n)]


def make_book(rng: random.Random, venue: str, mid: float, levels: int, stamp: int) -> BookUpdate:
    tick = float(TICK)
    half = max(round(mid * 0.5e-4 / tick), 1)
    centre = round(mid / tick)
    bids: list[Level] = []
    asks: list[Level] = []
    bid = centre - half
    ask = centre + half
    for _ in range(levels):
        bids.append((round(bid * tick, 1), round(10 ** rng.uniform(2.5, 4.5) / mid, 4) or 1e-4))
        asks.append((round(ask * tick, 1), round(10 ** rng.uniform(2.5, 4.5) / mid, 4) or 1e-4))
        bid -= rng.randint(1, 3)
        ask += rng.randint(1, 3)
    return BookUpdate(venue, SYMBOL, bids, asks, stamp // 1_000_000, stamp, None)


def make_updates(
    rng: random.Random, venues: list[str], levels: int, count: int, rate: float
) -> list[BookUpdate]:
    fair = PRICE
    basis = dict.fromkeys(venues, 0.0)
    dislocated: dict[str, float] = {}
    updates = []
    stamp = 1_700_000_000_000_000_000
    for _ in range(count):
        stamp += 100_000  # 0.1 ms apart
        fair *= 1.0 + rng.gauss(0.0, 2e-5)
        venue = rng.choice(venues)
        basis[venue] = 0.95 * basis[venue] + rng.gauss(0.0, 3e-5)
        shift = dislocated.pop(venue, 0.0)  # the next update of a dislocated venue repairs it
        if not shift and rng.random() < rate:
            shift = rng.choice((-1, 1)) * rng.uniform(0.002, 0.006)
            dislocated[venue] = 0.0
        mid = fair * (1.0 + basis[venue] + shift)
        updates.append(make_book(rng, venue, mid, levels, stamp))
    return updates


# -- baseline: naive full recomputation (NOT the strategy) -----------------------------


def _decimal_levels(levels: list[Level]) -> list[tuple[Decimal, Decimal]]:
    return [(Decimal(repr(p)), Decimal(repr(s))) for p, s in levels]


def _walk(levels: list[tuple[Decimal, Decimal]], amount: Decimal) -> tuple[Decimal, Decimal] | None:
    left = amount
    cost = Decimal(0)
    for price, size in levels:
        if size >= left:
            return cost + price * left, price
        cost += price * size
        left -= size
    return None


def naive_full_recomputation(
    state: MarketState, symbols: list[str], now: int
) -> tuple[Decimal, str, str, Decimal] | None:
    """BASELINE. Every pair of every symbol, Decimal maths, every level boundary as a size."""
    edge = Decimal(repr(MIN_EDGE_BPS)) / 10_000
    best: tuple[Decimal, str, str, Decimal] | None = None
    max_age_ns = state.max_book_age_ms * 1e6
    for symbol in symbols:
        ladders: dict[str, tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]] = {}
        for venue in state.venues_by_symbol.get(symbol, ()):
            book: OrderBook | None = state.books.get((venue, symbol))
            if book is None or now - book.received_ns > max_age_ns or not book.bids:
                continue
            if not book.asks or book.bids[0][0] >= book.asks[0][0]:
                continue
            ladders[venue] = (_decimal_levels(book.bids), _decimal_levels(book.asks))
        for buy_venue, (_, asks) in ladders.items():
            for sell_venue, (bids, _) in ladders.items():
                if buy_venue == sell_venue:
                    continue
                buy = state.markets[(buy_venue, symbol)]
                sell = state.markets[(sell_venue, symbol)]
                lot = max(buy.amount_step, sell.amount_step)  # equal steps here
                cap = min(
                    state.balances.get((sell_venue, sell.base), Decimal(0)),
                    sum((s for _, s in asks), Decimal(0)),
                    sum((s for _, s in bids), Decimal(0)),
                )
                sizes = set()
                for ladder in (asks, bids):
                    depth = Decimal(0)
                    for _, size in ladder:
                        depth += size
                        sizes.add(min(depth, cap))
                for size in sizes:
                    amount = (size / lot).to_integral_value(ROUND_FLOOR) * lot
                    if amount <= 0:
                        continue
                    bought = _walk(asks, amount)
                    sold = _walk(bids, amount)
                    if bought is None or sold is None:
                        continue
                    cost, worst_ask = bought
                    proceeds, _ = sold
                    quote = state.balances.get((buy_venue, buy.quote), Decimal(0))
                    if amount * worst_ask * (1 + buy.taker_fee) > quote:
                        continue
                    profit = proceeds * (1 - sell.taker_fee) - cost * (1 + buy.taker_fee)
                    if profit > 0 and profit >= edge * cost and (best is None or profit > best[0]):
                        best = (profit, buy_venue, sell_venue, amount)
    return best


# -- measurement ---------------------------------------------------------------------


def percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(n_venues: int, args: argparse.Namespace) -> dict[str, object]:
    rng = random.Random(args.seed + n_venues)
    venues = venue_names(n_venues)
    markets = [Market(v, SYMBOL, "BTC", "USDT", TICK, STEP, taker_fee=FEE) for v in venues]
    balances = []
    for venue in venues:
        balances += [
            Balance(venue, "USDT", Decimal(10_000_000)),
            Balance(venue, "BTC", Decimal(100)),
        ]
    now = [0]
    state = MarketState(markets, balances=balances, clock=lambda: now[0])
    ctx = state.context()
    strategy = CrossExchange.from_params({"min_edge_bps": MIN_EDGE_BPS})
    strategy.on_start(ctx)
    updates = make_updates(
        rng, venues, args.levels, args.warmup + args.updates, args.dislocation_rate
    )
    for update in updates[: args.warmup]:
        now[0] = update.received_ns
        state.apply(update)
        strategy.on_book(update, ctx)
    timed = updates[args.warmup :]
    every = max(1, len(timed) // max(1, args.baseline_samples))

    times: list[float] = []
    quiet: list[float] = []  # updates that proposed nothing
    busy: list[float] = []  # updates that proposed an opportunity
    baseline: list[float] = []
    base_hits = 0
    clock = time.perf_counter_ns
    gc.collect()
    gc.disable()
    try:
        for k, update in enumerate(timed):
            now[0] = update.received_ns
            state.apply(update)
            t0 = clock()
            result = strategy.on_book(update, ctx)
            elapsed = (clock() - t0) / 1000.0
            times.append(elapsed)
            (busy if result else quiet).append(elapsed)
            if k % every == 0:
                t0 = clock()
                found = naive_full_recomputation(state, [SYMBOL], now[0])
                baseline.append((clock() - t0) / 1000.0)
                base_hits += found is not None
    finally:
        gc.enable()
    for series in (times, quiet, busy, baseline):
        series.sort()
    median = statistics.median(times)
    base_median = statistics.median(baseline)
    return {
        "venues": n_venues,
        "levels": args.levels,
        "updates": len(times),
        "updates_with_opportunity": len(busy),
        "median_us": round(median, 2),
        "p99_us": round(percentile(times, 0.99), 2),
        "max_us": round(times[-1], 1),
        "no_opportunity_p99_us": round(percentile(quiet, 0.99), 2),
        "opportunity_median_us": round(statistics.median(busy), 1) if busy else None,
        "baseline_updates": len(baseline),
        "baseline_with_opportunity": base_hits,
        "baseline_median_us": round(base_median, 1),
        "baseline_p99_us": round(percentile(baseline, 0.99), 1),
        "ratio": round(base_median / median, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venues", default="2,5,10", help="venue counts (2,5,10)")
    parser.add_argument("--levels", type=int, default=20, help="levels a side (20)")
    parser.add_argument("--updates", type=int, default=20_000, help="timed updates (20000)")
    parser.add_argument("--warmup", type=int, default=2_000, help="untimed updates first (2000)")
    parser.add_argument(
        "--baseline-samples", type=int, default=200, help="baseline timings per run (200)"
    )
    parser.add_argument(
        "--dislocation-rate", type=float, default=0.01, help="chance per update (0.01)"
    )
    parser.add_argument("--seed", type=int, default=7, help="random seed (7)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--check", action="store_true", help="exit 1 if the target is missed")
    args = parser.parse_args()
    counts = [int(n) for n in args.venues.split(",") if n]
    if TARGET_VENUES not in counts:
        counts.insert(0, TARGET_VENUES)
    rows = [measure(n, args) for n in counts]
    target_row = next(r for r in rows if r["venues"] == TARGET_VENUES)
    median = float(target_row["median_us"])  # type: ignore[arg-type]
    passed = median <= TARGET_US
    if args.json:
        print(
            json.dumps(
                {
                    "python": sys.version.split()[0],
                    "rows": rows,
                    "target_venues": TARGET_VENUES,
                    "target_median_us": TARGET_US,
                    "pass": passed,
                }
            )
        )
    else:
        print(
            f"{'venues':>6} {'updates':>8} {'with opp':>8} {'median us':>10} {'p99 us':>8} "
            f"{'max us':>8} {'p99 no-opp':>10} {'med opp':>8} {'baseline med us':>16} "
            f"{'baseline p99 us':>16} {'ratio':>7}"
        )
        for r in rows:
            print(
                f"{r['venues']:>6} {r['updates']:>8} {r['updates_with_opportunity']:>8} "
                f"{r['median_us']:>10} {r['p99_us']:>8} {r['max_us']:>8} "
                f"{r['no_opportunity_p99_us']:>10} {r['opportunity_median_us']!s:>8} "
                f"{r['baseline_median_us']:>16} {r['baseline_p99_us']:>16} {r['ratio']:>6}x"
            )
        print(
            f"{args.levels} levels a side; baseline = naive full recomputation in Decimal, "
            f"timed on every {max(1, args.updates // max(1, args.baseline_samples))}th update; "
            "gc disabled while timing"
        )
        verdict = "PASS" if passed else "FAIL"
        print(
            f"on_book median with {TARGET_VENUES} venues {median} us, "
            f"target <= {TARGET_US} us: {verdict}"
        )
    return 1 if args.check and not passed else 0


if __name__ == "__main__":
    sys.exit(main())
