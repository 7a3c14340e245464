#!/usr/bin/env python3
"""NautilusTrader baseline: its BacktestEngine replaying an arbot dataset's top of book.

Measures how fast NautilusTrader's ``BacktestEngine`` runs a cross-exchange arbitrage
strategy equivalent to arbot's ``cross_exchange`` over the same book updates an arbot
dataset holds, so ``scripts/bench_backtest.py`` can compare rates. Every dataset row
(``DIR/venue=V/symbol=S/date=D/part-N.parquet``) becomes one ``QuoteTick``: the best
bid and ask of that update with their sizes, ``ts_event = ts_init = received_ns``, on
instrument ``<BASE><QUOTE>.<VENUE>`` (``LINKUSDT.BINANCE``, ``LINKUSDT.HUOBI``). Rows
with an empty side are skipped and counted. Price and size precisions of each
instrument are the most decimals the venue's top-of-book values use.

The strategy is one Python callback per tick: keep the latest bid/ask per instrument
and, once both are known, check both directions; when
``bid_other * (1 - fee) > ask_this * (1 + fee) * (1 + min_edge)`` it counts an
opportunity and submits two IOC market orders (buy the cheap venue, sell the dear one)
of ``min(ask size, bid size)`` rounded down to the coarser size increment of the two
(zero skips). Unlike arbot it does not walk depth. The venues are simulated cash
accounts (NETTING OMS) with large USDT and base balances and the taker fee ``--fee``.

Counts differ from arbot's by design: Nautilus hands the strategy one tick at a time,
so when both venues update at the same instant the first tick is checked against the
other venue's previous quote. arbot applies all updates of an instant before its
strategy runs. ``opportunities_same_ts`` counts the crossings where both quotes share a
timestamp; on the LINK set it equals arbot's count (1,339 at fee 0, 94 at 1 bp), while
``opportunities`` is 3,834 and 762.

Cost per fill grows with the run (Nautilus 1.221): a NETTING position checks every new
fill against all of its earlier fills for a duplicate trade id, and an arbitrage
position seldom returns to flat, so the fill cost grows linearly and the run
quadratically with the number of fills. Rates fall with input size when the strategy
trades often (fee 0: 14,400 ticks at about 7,000/s, 100,800 at 900/s). HEDGING is no way
out: each order opens a position that stays open, and per-tick work grows with them.

``seconds`` is the wall time of ``engine.run()`` alone; ``load_seconds`` covers reading
the Parquet files, building the ticks and handing them to the engine (``add_data``,
which sorts them). ``peak_rss_mb`` is the process's peak RSS at the end (Nautilus
holds every tick in memory). Prints one JSON line on stdout; exits 3 with a one-line
message on stderr when ``nautilus_trader`` is not installed (``pip install
nautilus_trader``; it is not an arbot dependency).

    python scripts/nautilus_baseline.py --data DIR --fee 0.0001 [--min-edge-bps 0]
        [--limit N] [--repeat K]

``--repeat K`` replays the data K times, each copy shifted by the data's span (last
minus first ``received_ns``, plus one second), to make a big input cheaply;
``--limit N`` keeps the first N ticks (after repeating) in time order.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

EXIT_NOT_INSTALLED = 3
MAX_DECIMALS = 9  # cap: finer grids change nothing (both legs trade on the coarser grid)
STARTING_QUOTE = 100_000_000  # per venue; big enough that no order is refused for funds
STARTING_BASE = 10_000_000
_NS_PER_S = 1_000_000_000


@dataclass
class VenueTicks:
    """One venue's top-of-book columns, aligned, in time order."""

    venue: str
    base: str
    quote: str
    ts: npt.NDArray[np.uint64]
    bid_px: npt.NDArray[np.float64]
    bid_qty: npt.NDArray[np.float64]
    ask_px: npt.NDArray[np.float64]
    ask_qty: npt.NDArray[np.float64]
    price_precision: int
    size_precision: int


@dataclass
class Loaded:
    venues: list[VenueTicks]
    rows: int
    skipped: int


def _decimals(values: npt.NDArray[np.float64]) -> int:
    """The fewest decimals that represent every value, at most MAX_DECIMALS.

    Like arbot's backtest default grid (``10^-d`` for the most decimals recorded), so
    noisy recordings give fine steps: Huobi's LINK asks include sizes such as
    6.431148750331966 among two-decimal ones, and its size precision comes out as 9.
    """
    import numpy as np

    for k in range(MAX_DECIMALS + 1):
        scaled = values * 10.0**k
        off = np.abs(scaled - np.round(scaled)) > 1e-6 * np.maximum(1.0, np.abs(scaled))
        if not bool(off.any()):
            return k
    return MAX_DECIMALS


def _read_venue(venue_dir: Path) -> tuple[pa.Table, str, int]:
    """Read every part of one venue's partitions; return (top-of-book table, symbol, skipped)."""
    parts = sorted(venue_dir.glob("symbol=*/date=*/part-*.parquet"))
    columns = ["received_ns", "bid_px", "bid_qty", "ask_px", "ask_qty"]
    symbols = {p.parent.parent.name.removeprefix("symbol=") for p in parts}
    if len(symbols) != 1:
        raise SystemExit(f"{venue_dir}: expected one symbol, found {sorted(symbols) or 'none'}")
    table = pa.concat_tables(pq.read_table(p, columns=columns) for p in parts)
    non_empty = pc.and_(
        pc.and_(
            pc.greater(pc.list_value_length(table["bid_px"]), 0),
            pc.greater(pc.list_value_length(table["bid_qty"]), 0),
        ),
        pc.and_(
            pc.greater(pc.list_value_length(table["ask_px"]), 0),
            pc.greater(pc.list_value_length(table["ask_qty"]), 0),
        ),
    )
    kept = table.filter(non_empty)
    top = pa.table(
        {
            "ts": kept["received_ns"],
            **{name: pc.list_element(kept[name], 0) for name in columns[1:]},
        }
    )
    return top, symbols.pop(), table.num_rows - kept.num_rows


def load_dataset(data: Path, repeat: int, limit: int | None) -> Loaded:
    """Read the dataset's top of book per venue, repeated and limited as asked."""
    import numpy as np

    venue_dirs = sorted(d for d in data.glob("venue=*") if d.is_dir())
    if len(venue_dirs) != 2:
        raise SystemExit(f"{data}: expected 2 venue=* folders, found {len(venue_dirs)}")
    tables: list[pa.Table] = []
    names: list[tuple[str, str, str]] = []
    rows = skipped = 0
    for venue_dir in venue_dirs:
        top, symbol, n_skipped = _read_venue(venue_dir)
        base, _, quote = symbol.partition("-")
        tables.append(top)
        names.append((venue_dir.name.removeprefix("venue="), base, quote))
        rows += top.num_rows + n_skipped
        skipped += n_skipped

    # One stream of (ts, venue index) in time order, so --repeat and --limit act on it.
    ts = np.concatenate([t["ts"].to_numpy().astype(np.int64) for t in tables])
    which = np.concatenate([np.full(t.num_rows, i, dtype=np.int8) for i, t in enumerate(tables)])
    cols = {
        name: np.concatenate([t[name].to_numpy().astype(np.float64) for t in tables])
        for name in ("bid_px", "bid_qty", "ask_px", "ask_qty")
    }
    if repeat > 1:
        shift = int(ts.max() - ts.min()) + _NS_PER_S
        ts = np.concatenate([ts + k * shift for k in range(repeat)])
        which = np.tile(which, repeat)
        cols = {name: np.tile(values, repeat) for name, values in cols.items()}
    order = np.argsort(ts, kind="stable")
    if limit is not None:
        order = order[:limit]
    ts, which = ts[order], which[order]
    cols = {name: values[order] for name, values in cols.items()}

    venues = []
    for i, (venue, base, quote) in enumerate(names):
        mask = which == i
        bid_px, ask_px = cols["bid_px"][mask], cols["ask_px"][mask]
        bid_qty, ask_qty = cols["bid_qty"][mask], cols["ask_qty"][mask]
        venues.append(
            VenueTicks(
                venue=venue,
                base=base,
                quote=quote,
                ts=ts[mask].astype(np.uint64),
                bid_px=bid_px,
                bid_qty=bid_qty,
                ask_px=ask_px,
                ask_qty=ask_qty,
                price_precision=max(_decimals(bid_px), _decimals(ask_px)),
                size_precision=max(_decimals(bid_qty), _decimals(ask_qty)),
            )
        )
    return Loaded(venues=venues, rows=rows, skipped=skipped)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Load, build the engine, run it; return the measurement."""
    import nautilus_trader  # type: ignore[import-not-found,unused-ignore]
    from nautilus_trader.backtest.config import BacktestEngineConfig  # type: ignore[import-not-found,unused-ignore]
    from nautilus_trader.backtest.engine import BacktestEngine  # type: ignore[import-not-found,unused-ignore]
    from nautilus_trader.config import LoggingConfig, StrategyConfig  # type: ignore[import-not-found,unused-ignore]
    from nautilus_trader.model.data import QuoteTick  # type: ignore[import-not-found,unused-ignore]
    from nautilus_trader.model.enums import AccountType, OmsType, OrderSide, TimeInForce  # type: ignore[import-not-found,unused-ignore]
    from nautilus_trader.model.events import OrderFilled  # type: ignore[import-not-found,unused-ignore]
    from nautilus_trader.model.identifiers import InstrumentId, Symbol, Venue  # type: ignore[import-not-found,unused-ignore]
    from nautilus_trader.model.instruments import CurrencyPair  # type: ignore[import-not-found,unused-ignore]
    from nautilus_trader.model.objects import Currency, Money, Price, Quantity  # type: ignore[import-not-found,unused-ignore]
    from nautilus_trader.trading.strategy import Strategy  # type: ignore[import-not-found,unused-ignore]

    class CrossConfig(StrategyConfig, frozen=True):  # type: ignore[misc,unused-ignore]
        instrument_ids: tuple[str, str]
        fee: float
        min_edge_bps: float
        size_precision: int  # of the coarser instrument: both legs trade the same amount
        same_instant: bool  # trade only when both quotes are of one instant (as arbot)

    class CrossArb(Strategy):  # type: ignore[misc]
        """Top-of-book cross-exchange arbitrage between two instruments."""

        def __init__(self, config: CrossConfig) -> None:
            super().__init__(config)
            self.ids = [InstrumentId.from_str(s) for s in config.instrument_ids]
            self.index = {iid: i for i, iid in enumerate(self.ids)}
            self.sell_factor = 1.0 - config.fee
            self.buy_factor = (1.0 + config.fee) * (1.0 + config.min_edge_bps / 1e4)
            self.lot_scale = 10.0**config.size_precision
            self.bid = [math.nan, math.nan]
            self.bid_size = [0.0, 0.0]
            self.ask = [math.nan, math.nan]
            self.ask_size = [0.0, 0.0]
            self.ts = [0, 0]
            self.ticks = 0
            self.opportunities = 0
            self.opportunities_same_ts = 0
            self.submitted = 0
            self.filled = 0

        def on_start(self) -> None:
            for iid in self.ids:
                self.subscribe_quote_ticks(iid)

        def on_quote_tick(self, tick: QuoteTick) -> None:
            self.ticks += 1
            i = self.index[tick.instrument_id]
            j = 1 - i
            bid = self.bid[i] = tick.bid_price.as_double()
            ask = self.ask[i] = tick.ask_price.as_double()
            self.bid_size[i] = tick.bid_size.as_double()
            self.ask_size[i] = tick.ask_size.as_double()
            self.ts[i] = tick.ts_event
            # Until the other venue has quoted its bid and ask are NaN: both tests fail.
            other_bid, other_ask = self.bid[j], self.ask[j]
            if other_bid * self.sell_factor > ask * self.buy_factor:
                self._trade(buy=i, sell=j)
            if bid * self.sell_factor > other_ask * self.buy_factor:
                self._trade(buy=j, sell=i)

        def _trade(self, buy: int, sell: int) -> None:
            self.opportunities += 1
            if self.ts[0] == self.ts[1]:
                # Both quotes from one instant: what arbot's engine, which applies all
                # updates of an instant before the strategy runs, would also see.
                self.opportunities_same_ts += 1
            elif self.config.same_instant:
                return
            size = min(self.ask_size[buy], self.bid_size[sell])
            lots = math.floor(size * self.lot_scale + 1e-9)
            if lots <= 0:
                return
            amount = lots / self.lot_scale
            for idx, side in ((buy, OrderSide.BUY), (sell, OrderSide.SELL)):
                instrument = self.cache.instrument(self.ids[idx])
                order = self.order_factory.market(
                    instrument_id=self.ids[idx],
                    order_side=side,
                    quantity=instrument.make_qty(amount),
                    time_in_force=TimeInForce.IOC,
                )
                self.submit_order(order)
                self.submitted += 1

        def on_order_filled(self, event: OrderFilled) -> None:
            self.filled += 1

    t0 = time.perf_counter()
    loaded = load_dataset(args.data, args.repeat, args.limit)
    t_read = time.perf_counter()

    fee = Decimal(str(args.fee))
    instruments: list[CurrencyPair] = []
    ticks: list[list[QuoteTick]] = []
    for vt in loaded.venues:
        venue = Venue(vt.venue.upper())
        symbol = Symbol(f"{vt.base}{vt.quote}")
        base, quote = Currency.from_str(vt.base), Currency.from_str(vt.quote)
        instrument = CurrencyPair(
            instrument_id=InstrumentId(symbol, venue),
            raw_symbol=symbol,
            base_currency=base,
            quote_currency=quote,
            price_precision=vt.price_precision,
            size_precision=vt.size_precision,
            price_increment=Price(10.0**-vt.price_precision, vt.price_precision),
            size_increment=Quantity(10.0**-vt.size_precision, vt.size_precision),
            maker_fee=fee,
            taker_fee=fee,
            ts_event=0,
            ts_init=0,
        )
        instruments.append(instrument)
        # The bulk fast path (what QuoteTickDataWrangler uses): one Cython loop over
        # float64 arrays, no per-tick Python-level Price/Quantity construction.
        ticks.append(
            QuoteTick.from_raw_arrays_to_list(
                instrument.id,
                vt.price_precision,
                vt.size_precision,
                vt.bid_px,
                vt.ask_px,
                vt.bid_qty,
                vt.ask_qty,
                vt.ts,
                vt.ts,
            )
        )
    t_build = time.perf_counter()

    # Logging: bypass_logging=True never initialises Nautilus's logger, so every
    # Logger.info/debug call returns at its first check (no formatting, no crossing
    # into Rust, no stdout writes); with log_level="ERROR" each of the several log
    # calls per order and per component event would still cross into Rust to be
    # filtered. --log-level turns real logging back on for debugging. Post-run analysis
    # (portfolio statistics) is off: the measurement is the event loop.
    logging = (
        LoggingConfig(bypass_logging=True)
        if args.log_level == "bypass"
        else LoggingConfig(log_level=args.log_level)
    )
    engine = BacktestEngine(BacktestEngineConfig(logging=logging, run_analysis=False))
    for instrument in instruments:
        engine.add_venue(
            venue=instrument.id.venue,
            oms_type=OmsType.NETTING,
            account_type=AccountType.CASH,
            base_currency=None,  # multi-currency cash account
            starting_balances=[
                Money(STARTING_QUOTE, instrument.quote_currency),
                Money(STARTING_BASE, instrument.base_currency),
            ],
        )
        engine.add_instrument(instrument)
    for venue_ticks in ticks:
        if venue_ticks:
            engine.add_data(venue_ticks)
    strategy = CrossArb(
        CrossConfig(
            instrument_ids=(str(instruments[0].id), str(instruments[1].id)),
            fee=args.fee,
            min_edge_bps=args.min_edge_bps,
            size_precision=min(i.size_precision for i in instruments),
            same_instant=args.same_instant,
        )
    )
    engine.add_strategy(strategy)
    t_setup = time.perf_counter()

    engine.run()
    t_run = time.perf_counter()
    engine.dispose()

    updates = sum(len(v) for v in ticks)
    seconds = t_run - t_setup
    return {
        "engine": "nautilus_trader",
        "version": nautilus_trader.__version__,
        "updates": updates,
        "seconds": round(seconds, 6),
        "updates_per_s": round(updates / seconds, 1) if seconds > 0 else None,
        "load_seconds": round(t_setup - t0, 6),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "opportunities": strategy.opportunities,
        "orders": strategy.filled,
        # Breakdown and checks (not part of the comparison).
        "read_seconds": round(t_read - t0, 6),
        "build_seconds": round(t_build - t_read, 6),
        "setup_seconds": round(t_setup - t_build, 6),
        "ticks_seen": strategy.ticks,
        "orders_submitted": strategy.submitted,
        "opportunities_same_ts": strategy.opportunities_same_ts,
        "rows": loaded.rows,
        "skipped_rows": loaded.skipped,
        "repeat": args.repeat,
        "precision": {str(i.id): [i.price_precision, i.size_precision] for i in instruments},
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="arbot dataset folder")
    parser.add_argument("--fee", type=float, required=True, help="taker fee per leg, 0.0001 = 1bp")
    parser.add_argument("--min-edge-bps", type=float, default=0.0)
    parser.add_argument("--limit", type=int, default=None, help="first N ticks in time order")
    parser.add_argument("--repeat", type=int, default=1, help="replay the data K times")
    parser.add_argument(
        "--same-instant",
        action="store_true",
        help="trade only crossings whose two quotes share a timestamp (arbot's moments)",
    )
    parser.add_argument(
        "--log-level",
        default="bypass",
        help="'bypass' (default: no Nautilus logging at all) or a level such as ERROR",
    )
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        import nautilus_trader  # type: ignore[import-not-found,unused-ignore] # noqa: F401
    except ImportError as exc:  # absent, or unusable (e.g. a missing dependency)
        print(f"nautilus_trader is not installed: {exc}", file=sys.stderr)
        return EXIT_NOT_INSTALLED
    print(json.dumps(run(args)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
