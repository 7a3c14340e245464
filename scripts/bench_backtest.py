#!/usr/bin/env python3
"""How fast does ``arbot backtest`` replay books? Targets: >= 500,000 book updates/s over
1,000,000+ updates of two venues through cross_exchange, risk and the executor; >= 4x
NautilusTrader's BacktestEngine on the same updates; memory flat in the number of updates.

The data: the real Binance and Huobi LINK/USDT books (``../shared/data``, imported with
``arbot data import``), tiled in time until there are ``--updates`` of them (each copy
shifted by the recording's span, two hours), so the crossings keep their real frequency.
Without the shared data a seeded random walk of two venues stands in (``--synthetic``):
its random level sizes decode slower and fill in more pieces (about 12 fills per
execution against 3), so its figures are lower and are not the targets' data.

Each run is a fresh process (peak RSS is the process's own) doing what ``arbot backtest``
does: settings from TOML, a SQLite store, the real strategy, risk engine, executor and
journal, the screened replay (:mod:`arbot.backtest.columnar`). Timed: ``Backtest.run()``,
setup included. Runs, at taker fees on both venues of

* 10 bps (a retail account: nothing crosses after fees, the replay alone),
* 2 bps (a VIP account: about 1,100 executions per million updates) -- the target row,
* 1 bps (about 6,600 executions per million updates: the executor's cost shows);

and, as baselines in the same run:

* the target fee with the screen off (every update built and run through the strategy),
  over the first ``--plain-updates`` updates;
* NautilusTrader's BacktestEngine on the same updates as quote ticks, with an
  equivalent strategy (``scripts/nautilus_baseline.py``), when ``nautilus_trader`` is
  installed (``pip install nautilus_trader``; it is not a dependency of arbot): at the
  target fee trading only crossings whose two quotes are of one instant (arbot's
  moments: the same 1,120 trades), and at 10 bps (nothing to trade). Checked strictly:
  our whole run, reading the dataset included, against its ``engine.run()`` alone
  (reading the Parquet files and building its ticks excluded); the ratio to its load
  plus run is printed beside it. For information (skip with ``--quick-nautilus``), the
  same fee with a strategy that trades every tick's crossing, which trades 12x more
  often and whose per-fill cost grows with a position's fills;
* memory: the target fee on the first quarter of the updates; peak RSS must not grow by
  more than 25 % from a quarter to all of them (the replay streams; nothing is loaded
  whole).

    python scripts/bench_backtest.py [--updates 1000000] [--data DIR] [--json] [--check]

``--check`` exits 1 when a target is missed (the Nautilus ratios only when it ran).

    python scripts/bench_backtest.py [--updates 1000000] [--data DIR] [--quick-nautilus]
        [--no-nautilus] [--json] [--check]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib
import json
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SHARED_LINK = HERE.parent.parent / "shared" / "data" / "binance_huobi_linkusdt"
TARGET_RATE = 500_000
TARGET_VS_NAUTILUS = 4.0
TARGET_MEMORY_GROWTH = 1.25
TARGET_FEE = "0.0002"
FEES = ("0.001", TARGET_FEE, "0.0001")
SYMBOL = "LINK/USDT"

CONFIG = """
database_url = "sqlite:///{db}"

[venues.binance]
exchange = "binance"
symbols = ["{symbol}"]
taker_fee = {fee}
balances = {{ USDT = 10000000, LINK = 1000000 }}

[venues.huobi]
exchange = "htx"
symbols = ["{symbol}"]
taker_fee = {fee}
balances = {{ USDT = 10000000, LINK = 1000000 }}

[strategy]
name = "cross_exchange"
[strategy.params]
min_edge_bps = 0

[risk]
max_order_notional = 100000000
max_symbol_notional = 100000000
max_open_exposure = 100000000
max_orders_per_second = 100000
max_daily_loss = 100000000

[backtest.venues.binance]
markets = {{ "{symbol}" = {{ price_tick = 0.0001, amount_step = 0.01 }} }}
[backtest.venues.huobi]
markets = {{ "{symbol}" = {{ price_tick = 0.0001, amount_step = 0.01 }} }}
"""


# -- the data ------------------------------------------------------------------------------


def tile(source: Path, out: Path, updates: int) -> int:
    """Copies of ``source``'s parts, each shifted by its span, until ``updates`` rows."""
    import pyarrow.compute as pc  # type: ignore[import-untyped]
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    parts = sorted(source.glob("venue=*/symbol=*/date=*/part-*.parquet"))
    tables = [(path, pq.read_table(path)) for path in parts]
    rows = sum(len(table) for _, table in tables)
    first = min(pc.min(t["received_ns"]).as_py() for _, t in tables)
    last = max(pc.max(t["received_ns"]).as_py() for _, t in tables)
    span_ns = (last - first) // 10**9 * 10**9 + 10**9
    copies = -(-updates // rows)
    written = 0
    for k in range(copies):
        shift = k * span_ns
        for path, table in tables:
            received = pc.add(table["received_ns"], shift)
            day = dt.datetime.fromtimestamp(pc.min(received).as_py() / 1e9, dt.UTC).date()
            folder = out / path.parent.parent.relative_to(source) / f"date={day.isoformat()}"
            folder.mkdir(parents=True, exist_ok=True)
            shifted = table.set_column(
                table.schema.get_field_index("received_ns"), "received_ns", received
            ).set_column(
                table.schema.get_field_index("exchange_ms"),
                "exchange_ms",
                pc.add(table["exchange_ms"], shift // 10**6),
            )
            number = len(list(folder.glob("part-*.parquet")))
            pq.write_table(shifted, folder / f"part-{number:05d}.parquet", compression="zstd")
            written += len(table)
    return written


def synthetic(out: Path, updates: int, seed: int = 7) -> int:
    """Two venues' 10-level books around a common random walk, each venue updating every
    0.5 s; now and then one venue's quotes jump 20 bps away and drift back, as the LINK
    pair's do, so that a 2 bps taker fee leaves about one execution per 1,000 updates."""
    from arbot.feeds.book_feed import BookUpdate
    from arbot.feeds.dataset import DatasetWriter

    rng = random.Random(seed)
    t0 = 1_629_417_600 * 10**9
    mid = 20.0
    off = [0.0, 0.0]  # each venue's deviation from the common mid
    with DatasetWriter(out, flush_rows=50_000) as writer:
        for i in range(updates):
            v = i % 2
            mid += rng.choice((-1, 0, 0, 1)) * 0.0001 + (20.0 - mid) * 0.001
            off[v] *= 0.5
            if rng.random() < 0.0002:
                off[v] += rng.choice((-0.04, 0.04))
            top = round((mid + off[v]) * 10_000)
            bids = [((top - 10 - 10 * k) / 10_000, rng.randint(1, 500) / 10) for k in range(10)]
            asks = [((top + 10 + 10 * k) / 10_000, rng.randint(1, 500) / 10) for k in range(10)]
            ns = t0 + i * 250_000_000  # venues alternate: each updates every 0.5 s
            venue = ("binance", "huobi")[v]
            writer.write(BookUpdate(venue, SYMBOL, bids, asks, ns // 10**6, ns, None))
    return updates


def build_data(args: argparse.Namespace, work: Path) -> tuple[Path, str]:
    if args.data is not None:
        return args.data, f"{args.data}"
    out = work / "books"
    if not args.synthetic and SHARED_LINK.exists():
        from arbot.feeds.importers import import_books

        link = work / "link"
        import_books("snapshot-csv", SHARED_LINK, link, depth=10)
        tile(link, out, args.updates)
        return out, "LINK/USDT Binance + Huobi, real 1 s snapshots, tiled in time"
    synthetic(out, args.updates)
    return out, "synthetic random walk, two venues"


# -- one run, in its own process --------------------------------------------------------------


def run_one(spec: dict[str, Any]) -> dict[str, Any]:
    from loguru import logger

    logger.remove()
    from arbot.backtest.runner import Backtest
    from arbot.config import load_settings

    # pyarrow imports pandas, when it is installed, the first time a Python number meets
    # an Arrow kernel (0.2-0.5 s, once per process). arbot does not need pandas; it is
    # here when nautilus_trader is (which imports it itself): import it before timing.
    with contextlib.suppress(ImportError):
        importlib.import_module("pandas")

    work = Path(spec["work"])
    config = work / f"arbot-{spec['name']}.toml"
    db = work / f"arbot-{spec['name']}.db"
    config.write_text(CONFIG.format(db=db, symbol=SYMBOL, fee=spec["fee"]))
    settings = load_settings(config)
    started = time.perf_counter()
    result = Backtest(
        settings, spec["data"], end_ns=spec.get("end_ns"), screen=spec["screen"]
    ).run()
    seconds = time.perf_counter() - started
    s = result.summary
    return {
        "updates": s["updates"],
        "seconds": round(seconds, 3),
        "updates_per_s": round(s["updates"] / seconds),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "opportunities": s["opportunities_seen"],
        "executions": s["opportunities_taken"],
        "fills": s["fills"],
    }


def spawn(spec: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--run-one", json.dumps(spec)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"a benchmark run failed:\n{done.stderr[-2000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def nautilus(data: Path, fee: str, *extra: str) -> dict[str, Any] | None:
    """NautilusTrader on the same updates, or ``None`` when it is not installed."""
    script = str(HERE / "nautilus_baseline.py")
    done = subprocess.run(
        [sys.executable, script, "--data", str(data), "--fee", fee, *extra],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode == 3:
        return None
    if done.returncode != 0:
        raise SystemExit(f"the NautilusTrader baseline failed:\n{done.stderr[-2000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _checked(run: dict[str, Any] | None) -> dict[str, Any]:
    if run is None:
        raise SystemExit("nautilus_trader disappeared between two runs")
    return run


def cut_after(data: Path, updates: int) -> int:
    """The ``end_ns`` that keeps about the first ``updates`` updates."""
    import pyarrow.parquet as pq

    stamps = []
    for path in sorted(data.glob("venue=*/symbol=*/date=*/part-*.parquet")):
        stamps.extend(pq.read_table(path, columns=["received_ns"])["received_ns"].to_pylist())
    stamps.sort()
    return int(stamps[min(updates, len(stamps) - 1)])


# -- the report ---------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--updates", type=int, default=1_000_000)
    parser.add_argument("--plain-updates", type=int, default=100_000)
    parser.add_argument("--data", type=Path, help="an existing dataset of binance + huobi")
    parser.add_argument("--synthetic", action="store_true", help="random walk, not LINK")
    parser.add_argument("--no-nautilus", action="store_true")
    parser.add_argument(
        "--quick-nautilus",
        action="store_true",
        help="skip the informative Nautilus run that trades every tick (about 40 s)",
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--run-one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_one:
        print(json.dumps(run_one(json.loads(args.run_one))))
        return 0

    work = Path(tempfile.mkdtemp(prefix="arbot-bench-backtest-"))
    try:
        return report(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report(args: argparse.Namespace, work: Path) -> int:
    started = time.perf_counter()
    data, source = build_data(args, work)
    built_s = time.perf_counter() - started
    base = {"work": str(work), "data": str(data), "screen": True}
    rows: dict[str, dict[str, Any]] = {}
    for fee in FEES:
        rows[f"fee {fee}"] = spawn({**base, "name": f"fee{fee}", "fee": fee})
    target = rows[f"fee {TARGET_FEE}"]
    quarter = cut_after(data, target["updates"] // 4)
    rows["quarter"] = spawn({**base, "name": "quarter", "fee": TARGET_FEE, "end_ns": quarter})
    plain_end = cut_after(data, args.plain_updates)
    rows["plain"] = spawn(
        {**base, "name": "plain", "fee": TARGET_FEE, "screen": False, "end_ns": plain_end}
    )
    quiet = rows[f"fee {FEES[0]}"]
    theirs: dict[str, dict[str, Any]] = {}
    if not args.no_nautilus:
        # The same instants as arbot (both quotes of one instant); nothing to trade; and,
        # for information, a strategy that trades every tick's crossing.
        same = nautilus(data, TARGET_FEE, "--same-instant")
        if same is not None:
            theirs["same_instant"] = same
            theirs["no_trades"] = _checked(nautilus(data, FEES[0], "--same-instant"))
            if not args.quick_nautilus:
                theirs["every_tick"] = _checked(nautilus(data, TARGET_FEE))

    rate = target["updates_per_s"]
    growth = target["peak_rss_mb"] / rows["quarter"]["peak_rss_mb"]
    ratios: dict[str, float] = {}
    for name, ours in (("same_instant", target), ("no_trades", quiet)):
        if name in theirs:
            run = theirs[name]
            ratios[f"{name}_engine"] = ours["updates_per_s"] / run["updates_per_s"]
            ratios[f"{name}_end_to_end"] = ours["updates_per_s"] / (
                run["updates"] / (run["seconds"] + run["load_seconds"])
            )
    checks = {
        "rate": rate >= TARGET_RATE,
        "memory_flat": growth <= TARGET_MEMORY_GROWTH,
        # Strict: our whole run (reading the dataset included) against its engine.run()
        # alone (its reading and tick building excluded).
        "vs_nautilus": ratios["same_instant_engine"] >= TARGET_VS_NAUTILUS if ratios else None,
        "vs_nautilus_no_trades": ratios["no_trades_engine"] >= TARGET_VS_NAUTILUS
        if ratios
        else None,
    }
    document = {
        "data": source,
        "data_build_s": round(built_s, 1),
        "runs": rows,
        "nautilus": theirs or None,
        "target_fee": TARGET_FEE,
        "updates_per_s": rate,
        "vs_plain": round(rate / rows["plain"]["updates_per_s"], 1),
        "vs_nautilus": {name: round(value, 2) for name, value in ratios.items()} or None,
        "memory_growth": round(growth, 3),
        "checks": checks,
    }
    if args.json:
        print(json.dumps(document, indent=2))
    else:
        show(document)
    failed = [name for name, ok in checks.items() if ok is False]
    return 1 if args.check and failed else 0


def show(doc: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"arbot backtest replay: {doc['data']}")
    for column in ("run", "updates", "seconds", "updates/s", "peak RSS MB", "executions"):
        table.add_column(column, justify="left" if column == "run" else "right")
    names = {
        "fee 0.001": "taker 10 bps (nothing crosses)",
        f"fee {TARGET_FEE}": "taker 2 bps  << target row",
        "fee 0.0001": "taker 1 bps",
        "quarter": "taker 2 bps, first quarter",
        "plain": "taker 2 bps, screen off",
    }
    for key, row in doc["runs"].items():
        table.add_row(
            names[key],
            f"{row['updates']:,}",
            f"{row['seconds']:.2f}",
            f"{row['updates_per_s']:,}",
            f"{row['peak_rss_mb']:.0f}",
            f"{row['executions']:,}",
        )
    labels = {
        "no_trades": f"NautilusTrader, taker {float(FEES[0]) * 1e4:.0f} bps",
        "same_instant": f"NautilusTrader, taker {float(TARGET_FEE) * 1e4:.0f} bps, same instants",
        "every_tick": f"NautilusTrader, taker {float(TARGET_FEE) * 1e4:.0f} bps, every tick",
    }
    for key, theirs in (doc["nautilus"] or {}).items():
        table.add_row(
            f"{labels[key]} (engine.run only)",
            f"{theirs['updates']:,}",
            f"{theirs['seconds']:.2f}",
            f"{round(theirs['updates_per_s']):,}",
            f"{theirs['peak_rss_mb']:.0f}",
            f"{theirs.get('orders', 0) // 2:,}",
        )
    console.print(table)
    checks = doc["checks"]

    def verdict(ok: bool | None) -> str:
        return "not run" if ok is None else ("PASS" if ok else "FAIL")

    console.print(
        f"target row: {doc['updates_per_s']:,} updates/s (target >= {TARGET_RATE:,}): "
        f"{verdict(checks['rate'])}; {doc['vs_plain']}x the unscreened replay"
    )
    ratios = doc["vs_nautilus"]
    if ratios is None:
        console.print("vs NautilusTrader: not installed (pip install nautilus_trader)")
    else:
        console.print(
            f"vs NautilusTrader, same instants traded: {ratios['same_instant_engine']}x its "
            f"engine.run() (target >= {TARGET_VS_NAUTILUS}x): {verdict(checks['vs_nautilus'])}; "
            f"{ratios['same_instant_end_to_end']}x its load + run"
        )
        console.print(
            f"vs NautilusTrader, nothing to trade: {ratios['no_trades_engine']}x its "
            f"engine.run(): {verdict(checks['vs_nautilus_no_trades'])}; "
            f"{ratios['no_trades_end_to_end']}x its load + run"
        )
    console.print(
        f"peak RSS, all / first quarter: {doc['memory_growth']}x (target <= "
        f"{TARGET_MEMORY_GROWTH}x): {verdict(checks['memory_flat'])}"
    )


if __name__ == "__main__":
    sys.exit(main())
