#!/usr/bin/env python3
"""Import speed per format: rows/s into the Parquet dataset, next to the raw read.

For each recorded format in ../shared/data (or ARBOT_TEST_SHARED_DATA) this times
``import_books`` end to end (check the whole file, rebuild books, write Parquet) and, in
the same run, a baseline that only reads and parses the same file (gzip/CSV + JSON, no
books, no writing). The ratio shows what rebuilding and writing cost.

    python scripts/bench_import.py [--depth 20]
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
from pathlib import Path

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
    with gzip.open(path, "rt") as handle:
        for line in handle:
            json.loads(line.partition(" ")[2])
            rows += 1
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=20)
    args = parser.parse_args()
    if not DATA.exists():
        print(f"{DATA} is absent; set ARBOT_TEST_SHARED_DATA", file=sys.stderr)
        return 2
    print(
        f"{'format':<16} {'source':<34} {'rows':>8} {'rows/s':>10} {'raw lines/s':>12} {'ratio':>6}"
    )
    for fmt, relative in CASES:
        source = DATA / relative
        start = time.perf_counter()
        lines = raw_read(fmt, source)
        raw_s = time.perf_counter() - start
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            stats = import_books(fmt, source, Path(out) / "ds", depth=args.depth)
            import_s = time.perf_counter() - start
        rows = sum(stats.rows.values())
        print(
            f"{fmt:<16} {relative[-34:]:<34} {rows:>8,} {rows / import_s:>10,.0f} "
            f"{lines / raw_s:>12,.0f} {(rows / import_s) / (lines / raw_s):>6.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
