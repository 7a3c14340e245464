"""Importing real recorded data (skips when ../shared/data is absent), checked against
expectations computed independently from the raw files."""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from arbot.cli.main import main
from arbot.errors import ArbotError
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


def test_unknown_or_mismatched_formats_write_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("not a book\n")
    with pytest.raises(ArbotError, match=r"notes\.txt: not a snapshot-csv file"):
        import_books("snapshot-csv", bad, tmp_path / "out")
    with pytest.raises(ArbotError, match=r"notes\.txt: not a tardis file"):
        import_books("tardis", bad, tmp_path / "out")
    with pytest.raises(ArbotError, match="unknown format 'parquet'"):
        import_books("parquet", bad, tmp_path / "out")
    tardis_file = tmp_path / "t.csv"
    tardis_file.write_text(TARDIS_HEADER + "\n")
    with pytest.raises(ArbotError, match="this is tardis; run: arbot data import tardis"):
        import_books("snapshot-csv", tardis_file, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# ----- Tardis ---------------------------------------------------------------------------

TARDIS_HEADER = "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount"


@pytest.mark.parametrize("levels", [5, 25])
def test_tardis_book_snapshots_match_the_raw_rows(tmp_path: Path, levels: int) -> None:
    path = shared(
        f"fixtures_single_exchange_l2/nautilus/tardis/binance-futures_book_snapshot_{levels}_BTCUSDT.csv"
    )
    with path.open() as handle:
        raw = list(csv.DictReader(handle))
    stats = import_books("tardis", path, tmp_path / "ds", depth=levels)
    assert stats.rows == {("binance-futures", "BTC/USDT:USDT"): len(raw)}
    updates = list(read_dataset(tmp_path / "ds"))
    assert [u.received_ns for u in updates] == [int(r["local_timestamp"]) * 1000 for r in raw]
    assert [u.exchange_ms for u in updates] == [int(r["timestamp"]) // 1000 for r in raw]
    for update, row in zip(updates, raw, strict=True):
        assert update.bids == [
            (float(row[f"bids[{i}].price"]), float(row[f"bids[{i}].amount"]))
            for i in range(levels)
            if row[f"bids[{i}].price"]
        ]
        assert update.asks == [
            (float(row[f"asks[{i}].price"]), float(row[f"asks[{i}].amount"]))
            for i in range(levels)
            if row[f"asks[{i}].price"]
        ]
    (info,) = dataset_info(tmp_path / "ds")
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    assert info.first_received == epoch + timedelta(microseconds=int(raw[0]["local_timestamp"]))
    assert info.last_received == epoch + timedelta(microseconds=int(raw[-1]["local_timestamp"]))


def test_tardis_incremental_real_sample_is_one_snapshot_message(tmp_path: Path) -> None:
    path = shared(
        "fixtures_single_exchange_l2/nautilus/tardis/deribit_incremental_book_L2_BTC-PERPETUAL.csv"
    )
    with path.open() as handle:
        raw = list(csv.DictReader(handle))
    messages = {r["local_timestamp"] for r in raw}
    stats = import_books("tardis", path, tmp_path / "ds", depth=50)
    assert stats.rows == {("deribit", "BTC-PERPETUAL"): len(messages)}
    (update,) = read_dataset(tmp_path / "ds")
    asks = sorted((float(r["price"]), float(r["amount"])) for r in raw if r["side"] == "ask")
    assert update.asks == asks
    assert update.bids == []


def test_tardis_incremental_rebuilds_books_and_resets_on_a_new_snapshot(tmp_path: Path) -> None:
    rows = [
        # first snapshot (two messages' worth of rows at one local time)
        "x,BTCUSDT,1000,2000,true,bid,100.0,1",
        "x,BTCUSDT,1000,2000,true,bid,99.5,2",
        "x,BTCUSDT,1000,2000,true,ask,101.0,3",
        "x,BTCUSDT,1000,2000,true,ask,102,4",
        # an update: change, delete, add
        "x,BTCUSDT,1500,2500,false,bid,100.0,5",
        "x,BTCUSDT,1500,2500,false,ask,101.0,0",
        "x,BTCUSDT,1500,2500,false,ask,101.5,6",
        # another symbol interleaved
        "x,ETHUSDT,1600,2600,true,bid,10,1",
        "x,ETHUSDT,1600,2600,true,ask,11,1",
        # a new snapshot of BTCUSDT replaces everything
        "x,BTCUSDT,1700,2700,true,bid,90,7",
        "x,BTCUSDT,1700,2700,true,ask,91,8",
    ]
    path = tmp_path / "x_incremental_book_L2.csv"
    path.write_text(TARDIS_HEADER + "\n" + "\n".join(rows) + "\n")
    import_books("tardis", path, tmp_path / "ds")
    got = [(u.symbol, u.received_ns, u.bids, u.asks) for u in read_dataset(tmp_path / "ds")]
    assert got == [
        ("BTCUSDT", 2_000_000, [(100.0, 1.0), (99.5, 2.0)], [(101.0, 3.0), (102.0, 4.0)]),
        ("BTCUSDT", 2_500_000, [(100.0, 5.0), (99.5, 2.0)], [(101.5, 6.0), (102.0, 4.0)]),
        ("ETHUSDT", 2_600_000, [(10.0, 1.0)], [(11.0, 1.0)]),
        ("BTCUSDT", 2_700_000, [(90.0, 7.0)], [(91.0, 8.0)]),
    ]


def test_tardis_folder_takes_book_files_and_refuses_two_recordings_of_one_book(
    tmp_path: Path,
) -> None:
    folder = shared("fixtures_single_exchange_l2/nautilus/tardis")
    with pytest.raises(ArbotError, match=r"interleave with those of .*book_snapshot_"):
        import_books("tardis", folder, tmp_path / "ds")
    assert not (tmp_path / "ds").exists()
    days = tmp_path / "days"
    days.mkdir()
    for day, (local_a, local_b) in enumerate([(1, 2), (3, 4)]):
        (days / f"x_incremental_book_L2_{day}.csv").write_text(
            TARDIS_HEADER
            + f"\nx,BTCUSDT,{local_a},{local_a},true,bid,100,1"
            + f"\nx,BTCUSDT,{local_a},{local_a},true,ask,101,1"
            + f"\nx,BTCUSDT,{local_b},{local_b},false,bid,100,{day + 2}\n"
        )
    (days / "x_trades.csv").write_text(
        "exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n"
    )
    stats = import_books("tardis", days, tmp_path / "ds")
    assert stats.rows == {("x", "BTCUSDT"): 4}
    assert [u.bids for u in read_dataset(tmp_path / "ds")] == [
        [(100.0, 1.0)],
        [(100.0, 2.0)],
        [(100.0, 1.0)],
        [(100.0, 3.0)],
    ]


# ----- our own recordings ---------------------------------------------------------------


def test_arbot_dataset_reimports_with_filters_and_depth(tmp_path: Path) -> None:
    folder = shared("binance_huobi_linkusdt")
    import_books("snapshot-csv", folder, tmp_path / "full", depth=10)
    stats = import_books("arbot", tmp_path / "full", tmp_path / "bnc", venue="binance", depth=3)
    assert stats.rows == {("binance", "LINK/USDT"): 7200}
    original = [u for u in read_dataset(tmp_path / "full") if u.venue == "binance"]
    copied = list(read_dataset(tmp_path / "bnc"))
    assert [u.received_ns for u in copied] == [u.received_ns for u in original]
    assert all(
        c.bids == o.bids[:3] and c.asks == o.asks[:3] for c, o in zip(copied, original, strict=True)
    )
    with pytest.raises(ArbotError, match="into itself"):
        import_books("arbot", tmp_path / "full", tmp_path / "full")


# ----- bad input: one line naming file and line, the output folder untouched ------------


def _snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _csv_text(rows: list[str]) -> str:
    header = "timestamp,symbol,b1,b2,bv1,bv2,a1,a2,av1,av2"
    return header + "\n" + "\n".join(rows) + "\n"


GOOD_ROWS = [
    "2021-08-20 00:00:00,LINKUSDT.BNC,10.0,9.9,1,2,10.1,10.2,3,4",
    "2021-08-20 00:00:01,LINKUSDT.BNC,10.0,9.9,1,2,10.1,10.2,3,4",
]


def _bad_files(tmp_path: Path) -> list[tuple[str, Path, str]]:
    """(format, file, expected message) for each kind of bad file the issue names."""
    cases: list[tuple[str, Path, str]] = []
    good = tmp_path / "orderbook_good.csv"
    good.write_text(_csv_text(GOOD_ROWS * 1))
    truncated = tmp_path / "capture.gz"
    payload = "\n".join(
        ['1 {"lastUpdateId": 5, "bids": [["10", "1"]], "asks": [["11", "1"]]}']
        + [
            f'{i} {{"e": "depthUpdate", "E": {i}, "s": "BTCUSDT", "U": {i + 4}, "u": {i + 4}, '
            f'"b": [["10", "{i}"]], "a": []}}'
            for i in range(2, 3000)
        ]
    ).encode()
    truncated.write_bytes(gzip.compress(payload)[:-200])
    cases.append(("binance-capture", truncated, rf"{truncated}: truncated gzip"))
    wrong = tmp_path / "orderbook_wrong.csv"
    wrong.write_text("timestamp,symbol,bid,ask\n2021-08-20 00:00:00,LINKUSDT.BNC,1,2\n")
    cases.append(("snapshot-csv", wrong, rf"{wrong}:1: columns must be"))
    crossed = tmp_path / "orderbook_crossed.csv"
    crossed.write_text(
        _csv_text([*GOOD_ROWS, "2021-08-20 00:00:02,LINKUSDT.BNC,10.2,9.9,1,2,10.1,10.3,3,4"])
    )
    cases.append(("snapshot-csv", crossed, rf"{crossed}:4: crossed book"))
    backwards = tmp_path / "orderbook_backwards.csv"
    backwards.write_text(_csv_text([GOOD_ROWS[1], GOOD_ROWS[0]]))
    cases.append(("snapshot-csv", backwards, rf"{backwards}:3: timestamp .* is earlier"))
    tardis_crossed = tmp_path / "tardis_crossed.csv"
    tardis_crossed.write_text(
        TARDIS_HEADER
        + "\nx,BTCUSDT,1,1,true,bid,100,1\nx,BTCUSDT,1,1,true,ask,101,1\n"
        + "x,BTCUSDT,2,2,false,bid,101.5,1\n"
    )
    cases.append(("tardis", tardis_crossed, rf"{tardis_crossed}:4: crossed book after this update"))
    tardis_backwards = tmp_path / "tardis_backwards.csv"
    tardis_backwards.write_text(
        TARDIS_HEADER
        + "\nx,BTCUSDT,5,5,true,bid,100,1\nx,BTCUSDT,5,5,true,ask,101,1\n"
        + "x,BTCUSDT,4,4,false,bid,100,2\n"
    )
    cases.append(
        ("tardis", tardis_backwards, rf"{tardis_backwards}:4: local_timestamp 4 is earlier")
    )
    tardis_columns = tmp_path / "tardis_columns.csv"
    tardis_columns.write_text("exchange,symbol,timestamp,local_timestamp,price\nx,y,1,1,2\n")
    cases.append(("tardis", tardis_columns, rf"{tardis_columns}:1: not a Tardis"))
    return cases


def test_bad_files_fail_with_one_line_and_leave_the_output_untouched(tmp_path: Path) -> None:
    out = tmp_path / "out"
    good = tmp_path / "orderbook_good.csv"
    good.write_text(_csv_text(GOOD_ROWS))
    import_books("snapshot-csv", good, out)
    before = _snapshot(out)
    assert before
    for fmt, path, message in _bad_files(tmp_path):
        with pytest.raises(ArbotError, match=message) as caught:
            import_books(fmt, path, out)
        assert "\n" not in str(caught.value)
        assert _snapshot(out) == before, f"{path.name} changed the output folder"
        assert not any(p.name.startswith(".import-") for p in out.iterdir())


def test_bad_file_from_the_command_line_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    crossed = tmp_path / "orderbook_crossed.csv"
    crossed.write_text(
        _csv_text([*GOOD_ROWS, "2021-08-20 00:00:02,LINKUSDT.BNC,10.2,9.9,1,2,10.1,10.3,3,4"])
    )
    code = main(["data", "import", "snapshot-csv", str(crossed), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert f"{crossed}:4: crossed book" in err
    assert not (tmp_path / "out").exists()


def test_an_abandoned_staging_folder_is_cleaned_by_the_next_import(tmp_path: Path) -> None:
    out = tmp_path / "out"
    good = tmp_path / "orderbook_good.csv"
    good.write_text(_csv_text(GOOD_ROWS))
    import_books("snapshot-csv", good, out)
    abandoned = out / ".import-deadbeef0000"
    (abandoned / "venue=binance").mkdir(parents=True)
    (abandoned / ".lock").touch()  # its import was killed: nobody holds the lock
    import_books("snapshot-csv", good, out)
    assert not abandoned.exists()
    assert sum(p.rows for p in dataset_info(out)) == 4
