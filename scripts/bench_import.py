#!/usr/bin/env python3
"""Import speed per format: rows/s into the Parquet dataset, next to the raw read.

For each recorded format this times ``import_books`` end to end (read and check every
line, rebuild books, write Parquet to a staging dataset, adopt it) and, in the same run,
a baseline that only reads and parses the same file (gzip/CSV + JSON or Parquet, no
books, no checks, no writing). ``import/raw`` is the raw read's time over the import's
(1.0 = importing costs no more
than parsing); ``lines`` counts input lines (or Parquet rows), ``rows`` dataset rows
written (one per book event; a capture's trade and ticker lines write none).

Sources: the real files in ../shared/data (or ARBOT_TEST_SHARED_DATA). The shared
Tardis samples have ten rows each, too few to time, so the Tardis rows are the same real
data converted in this run: the BTC/USDT capture's snapshot and diffs as
``incremental_book_L2`` and the Binance LINK/USDT snapshots as ``book_snapshot_10``.
The ``arbot`` row re-imports the dataset the snapshot-csv row wrote.

    python scripts/bench_import.py [--depth 20] [--json]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from arbot.feeds.importers import import_books

DATA = Path(
    os.environ.get("ARBOT_TEST_SHARED_DATA")
    or Path(__file__).resolve().parents[2] / "shared" / "data"
)
CASES = [
    ("snapshot-csv", "binance_huobi_linkusdt"),
    ("binance-capture", "hftbacktest_binance_3venues/spot/btcusdt_20240808.gz"),
    ("binance-capture", "hftbacktest_binance_3venues/spot/ethusdt_20240808.gz"),
]


def raw_read(fmt: str, path: Path) -> int:
    rows = 0
    if fmt == "snapshot-csv":
        for name in sorted(path.glob("orderbook_*.csv")):
            with name.open() as handle:
                for _ in csv.DictReader(handle):
                    rows += 1
        return rows
    if fmt == "tardis":
        with path.open() as handle:
            for _ in csv.reader(handle):
                rows += 1
        return rows - 1
    if fmt == "arbot":
        import pyarrow.parquet as pq  # type: ignore[import-untyped]

        for part in sorted(path.rglob("part-*.parquet")):
            rows += pq.read_table(part).num_rows
        return rows
    with gzip.open(path, "rt") as handle:
        for line in handle:
            json.loads(line.partition(" ")[2])
            rows += 1
    return rows


def tardis_incremental_from_capture(capture: Path, out: Path) -> None:
    """The capture's first REST snapshot and the diffs that continue it, as Tardis rows
    (diffs logged before the snapshot line take its receive time, as Binance's procedure
    buffers them)."""
    snapshot: dict[str, Any] | None = None
    snapshot_us = 0
    diffs: list[tuple[int, dict[str, Any]]] = []
    with gzip.open(capture, "rt") as handle:
        for line in handle:
            stamp, _, payload = line.partition(" ")
            message = json.loads(payload)
            if "lastUpdateId" in message:
                if snapshot is None:
                    snapshot, snapshot_us = message, int(stamp) // 1000
                continue
            data = message.get("data", {})
            if data.get("e") == "depthUpdate":
                diffs.append((int(stamp) // 1000, data))
    assert snapshot is not None
    rows = [
        f"binance,BTCUSDT,{snapshot_us},{snapshot_us},true,{side},{p},{q}"
        for side, key in (("bid", "bids"), ("ask", "asks"))
        for p, q in snapshot[key]
    ]
    for received_us, data in diffs:
        if data["u"] <= snapshot["lastUpdateId"]:
            continue
        local_us = max(received_us, snapshot_us)
        for side, key in (("bid", "b"), ("ask", "a")):
            rows += [
                f"binance,BTCUSDT,{data['E'] * 1000},{local_us},false,{side},{p},{q}"
                for p, q in data[key]
            ]
    header = "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount"
    out.write_text(header + "\n" + "\n".join(rows) + "\n")


def tardis_snapshots_from_csv(snapshots: Path, out: Path, levels: int = 10) -> None:
    """LINK/USDT snapshot rows as Tardis ``book_snapshot_10`` rows."""
    columns = ["exchange", "symbol", "timestamp", "local_timestamp"]
    for i in range(levels):
        columns += [
            f"asks[{i}].price",
            f"asks[{i}].amount",
            f"bids[{i}].price",
            f"bids[{i}].amount",
        ]
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    with snapshots.open() as source, out.open("w", newline="") as sink:
        writer = csv.writer(sink)
        writer.writerow(columns)
        for row in csv.DictReader(source):
            moment = datetime.fromisoformat(row["timestamp"]).replace(tzinfo=UTC)
            micros = (moment - epoch) // timedelta(microseconds=1)
            cells: list[str] = ["binance", "LINKUSDT", str(micros), str(micros)]
            for i in range(1, levels + 1):
                cells += [row[f"a{i}"], row[f"av{i}"], row[f"b{i}"], row[f"bv{i}"]]
            writer.writerow(cells)


def measure(fmt: str, source: Path, label: str, out: Path, depth: int) -> dict[str, object]:
    start = time.perf_counter()
    lines = raw_read(fmt, source)
    raw_s = time.perf_counter() - start
    start = time.perf_counter()
    stats = import_books(fmt, source, out, depth=depth)
    import_s = time.perf_counter() - start
    rows = sum(stats.rows.values())
    return {
        "format": fmt,
        "source": label,
        "rows": rows,
        "input_lines": lines,
        "rows_per_s": rows / import_s,
        "lines_per_s": lines / import_s,
        "raw_lines_per_s": lines / raw_s,
        "ratio": raw_s / import_s,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    if not DATA.exists():
        print(f"{DATA} is absent; set ARBOT_TEST_SHARED_DATA", file=sys.stderr)
        return 2
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        for number, (fmt, relative) in enumerate(CASES):
            results.append(
                measure(fmt, DATA / relative, relative, work / f"ds{number}", args.depth)
            )
        incremental = work / "binance_incremental_book_L2_BTCUSDT.csv"
        tardis_incremental_from_capture(DATA / CASES[1][1], incremental)
        results.append(
            measure(
                "tardis", incremental, "incremental_book_L2 (BTC capture)", work / "t1", args.depth
            )
        )
        snapshots = work / "binance_book_snapshot_10_LINKUSDT.csv"
        tardis_snapshots_from_csv(DATA / CASES[0][1] / "orderbook_bnc.csv", snapshots)
        results.append(
            measure("tardis", snapshots, "book_snapshot_10 (LINK csv)", work / "t2", args.depth)
        )
        results.append(
            measure("arbot", work / "ds0", "the snapshot-csv dataset", work / "a", args.depth)
        )
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(
        f"{'format':<16} {'source':<36} {'lines':>8} {'rows':>7} {'rows/s':>8} "
        f"{'lines/s':>9} {'raw lines/s':>12} {'import/raw':>10}"
    )
    for r in results:
        print(
            f"{r['format']:<16} {str(r['source'])[-36:]:<36} {r['input_lines']:>8,} "
            f"{r['rows']:>7,} {r['rows_per_s']:>8,.0f} {r['lines_per_s']:>9,.0f} "
            f"{r['raw_lines_per_s']:>12,.0f} {r['ratio']:>10.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
