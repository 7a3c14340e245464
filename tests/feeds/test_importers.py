"""Importing real recorded data (skips when ../shared/data is absent), checked against
expectations computed independently from the raw files."""

from __future__ import annotations

import csv
import gzip
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from arbot.errors import ArbotError, NotAvailableError
from arbot.feeds.dataset import dataset_info, read_dataset
from arbot.feeds.importers import import_books

SHARED_DATA = Path(
    os.environ.get("ARBOT_TEST_SHARED_DATA")
    or Path(__file__).resolve().parents[3] / "shared" / "data"
)


def shared(relative: str) -> Path:
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"{path} is absent (shared data lives next to the project, not in it)")
    return path


def test_link_snapshots_import_with_every_second_on_both_venues(tmp_path: Path) -> None:
    folder = shared("binance_huobi_linkusdt")
    seconds: dict[str, set[str]] = {}
    for name in ("orderbook_bnc.csv", "orderbook_hb.csv"):
        with (folder / name).open() as handle:
            for row in csv.DictReader(handle):
                seconds.setdefault(row["symbol"], set()).add(row["timestamp"])
    assert {len(s) for s in seconds.values()} == {7200}

    stats = import_books("snapshot-csv", folder, tmp_path / "ds", depth=10)
    assert stats.rows == {("binance", "LINK/USDT"): 7200, ("huobi", "LINK/USDT"): 7200}
    info = {p.venue: p for p in dataset_info(tmp_path / "ds")}
    for venue in ("binance", "huobi"):
        assert info[venue].rows == 7200
        assert info[venue].first_received == datetime(2021, 8, 20, 0, 0, 0, tzinfo=UTC)
        assert info[venue].last_received == datetime(2021, 8, 20, 1, 59, 59, tzinfo=UTC)
    by_time: dict[int, set[str]] = {}
    first_binance = None
    for update in read_dataset(tmp_path / "ds"):
        by_time.setdefault(update.received_ns, set()).add(update.venue)
        if first_binance is None and update.venue == "binance":
            first_binance = update
    assert len(by_time) == 7200
    assert all(venues == {"binance", "huobi"} for venues in by_time.values())
    assert first_binance is not None
    with (folder / "orderbook_bnc.csv").open() as handle:
        first_row = next(csv.DictReader(handle))
    assert first_binance.bids[:3] == [
        (float(first_row[f"b{i}"]), float(first_row[f"bv{i}"])) for i in (1, 2, 3)
    ]
    assert first_binance.asks[0] == (float(first_row["a1"]), float(first_row["av1"]))


def test_binance_capture_imports_one_row_per_applied_event(tmp_path: Path) -> None:
    capture = shared("hftbacktest_binance_3venues/spot/btcusdt_20240808.gz")
    last_update_id = None
    diffs: list[tuple[int, int, int]] = []
    with gzip.open(capture, "rt") as handle:
        for line in handle:
            stamp, _, payload = line.partition(" ")
            message = json.loads(payload)
            if "lastUpdateId" in message:
                last_update_id = message["lastUpdateId"]
                snapshot_ns = int(stamp)
            elif message.get("data", {}).get("e") == "depthUpdate":
                diffs.append((int(stamp), message["data"]["U"], message["data"]["u"]))
    assert last_update_id is not None
    applied = [d for d in diffs if d[2] > last_update_id]
    expected = 1 + len(applied)  # the snapshot, then every diff after it

    stats = import_books("binance-capture", capture, tmp_path / "ds")
    assert stats.rows == {("binance", "BTC/USDT"): expected}
    updates = list(read_dataset(tmp_path / "ds"))
    assert len(updates) == expected
    assert updates[-1].sequence == applied[-1][2]
    assert updates[-1].received_ns == max(snapshot_ns, applied[-1][0])
    assert all(u.bids[0][0] < u.asks[0][0] for u in updates)


def test_wrong_or_planned_formats_write_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("not a book\n")
    with pytest.raises(ArbotError, match="not a known replay format"):
        import_books("snapshot-csv", bad, tmp_path / "out")
    with pytest.raises(NotAvailableError):
        import_books("tardis", bad, tmp_path / "out")
    with pytest.raises(ArbotError, match="unknown format 'parquet'"):
        import_books("parquet", bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()
