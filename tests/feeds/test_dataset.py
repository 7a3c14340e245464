"""The book dataset: round trips, partitioning, crash safety, merge order, filters,
corrupt files and flat memory while streaming."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import tracemalloc
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arbot.feeds.book_feed import BookUpdate
from arbot.feeds.dataset import (
    DatasetError,
    DatasetWriter,
    dataset_info,
    read_dataset,
    recover_dataset,
)

DAY_NS = 86_400 * 10**9
T0 = 19_000 * DAY_NS + 23 * 3600 * 10**9  # 2022-01-08 23:00 UTC
INT64 = st.integers(-(2**63), 2**63 - 1)
FLOATS = st.floats(allow_nan=False, width=64)


def update(
    venue: str, ns: int, *, symbol: str = "BTC/USDT", depth: int = 3, seq: int | None = 1
) -> BookUpdate:
    bids = [(100.0 - k - ns % 7 * 0.01, 1.0 + k) for k in range(depth)]
    asks = [(101.0 + k + ns % 5 * 0.01, 2.0 + k) for k in range(depth)]
    return BookUpdate(venue, symbol, bids, asks, ns // 10**6 - 3, ns, seq)


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


updates = st.builds(
    BookUpdate,
    venue=st.sampled_from(["binance", "okx"]),
    symbol=st.sampled_from(["BTC/USDT", "ETH/USDT:USDT"]),
    bids=st.lists(st.tuples(FLOATS, FLOATS), max_size=4),
    asks=st.lists(st.tuples(FLOATS, FLOATS), max_size=4),
    exchange_ms=st.none() | INT64,
    received_ns=st.integers(T0 - DAY_NS, T0 + 2 * DAY_NS),
    sequence=st.none() | INT64,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(updates, max_size=40))
def test_round_trip_is_exact_field_for_field(batch: list[BookUpdate]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        with DatasetWriter(tmp, flush_rows=7) as writer:
            for u in batch:
                writer.write(u)
        out = list(read_dataset(tmp))
        assert [u.received_ns for u in out] == sorted(u.received_ns for u in batch)
        assert sorted(out, key=repr) == sorted(batch, key=repr)
        assert not [f for f in files_under(Path(tmp)) if f.endswith(".tmp")]


def test_sorted_input_reads_back_identically_including_empty_sides(tmp_path: Path) -> None:
    batch = [update("okx", T0 + i, depth=i % 4, seq=None if i % 3 else i) for i in range(50)]
    batch.append(BookUpdate("okx", "BTC/USDT", [], [], None, T0 + 99, None))
    with DatasetWriter(tmp_path, flush_rows=16) as writer:
        for u in batch:
            writer.write(u)
    assert list(read_dataset(tmp_path)) == batch


def test_partitions_by_venue_symbol_and_utc_date(tmp_path: Path) -> None:
    hour = 3600 * 10**9
    with DatasetWriter(tmp_path) as writer:
        for ns in (T0, T0 + 2 * hour):  # 23:00 on the 8th, 01:00 on the 9th
            writer.write(update("binance", ns))
            writer.write(update("okx", ns, symbol="ETH/USDT:USDT"))
    assert files_under(tmp_path) == [
        "venue=binance/symbol=BTC-USDT/date=2022-01-08/part-00001.parquet",
        "venue=binance/symbol=BTC-USDT/date=2022-01-09/part-00001.parquet",
        "venue=okx/symbol=ETH-USDT_USDT/date=2022-01-08/part-00001.parquet",
        "venue=okx/symbol=ETH-USDT_USDT/date=2022-01-09/part-00001.parquet",
    ]
    meta = pq.read_schema(next(tmp_path.rglob("part-*.parquet"))).metadata
    assert meta[b"arbot.format"] == b"1"
    infos = dataset_info(tmp_path)
    assert [(i.venue, i.symbol, i.date.isoformat(), i.rows) for i in infos] == [
        ("binance", "BTC/USDT", "2022-01-08", 1),
        ("binance", "BTC/USDT", "2022-01-09", 1),
        ("okx", "ETH/USDT:USDT", "2022-01-08", 1),
        ("okx", "ETH/USDT:USDT", "2022-01-09", 1),
    ]
    assert infos[0].first_received == dt.datetime(2022, 1, 8, 23, tzinfo=dt.UTC)


def test_rotation_keeps_every_file_sorted_and_numbers_parts(tmp_path: Path) -> None:
    nss = [T0 + 10, T0 + 20, T0 + 5, T0 + 30, T0 + 40, T0 + 50]  # goes back once
    with DatasetWriter(tmp_path, file_rows=2) as writer:
        for ns in nss:
            writer.write(update("okx", ns))
    names = [Path(f).name for f in files_under(tmp_path)]
    # [10, 20] | [5, 30] (went back) | [40, 50] (two rows per file)
    assert names == [f"part-{i:05d}.parquet" for i in range(1, 4)]
    assert [u.received_ns for u in read_dataset(tmp_path)] == sorted(nss)
    with DatasetWriter(tmp_path) as writer:  # a later writer continues the numbering
        writer.write(update("okx", T0 + 60))
    assert Path(files_under(tmp_path)[-1]).name == "part-00004.parquet"


def journal_rows(journal: Path) -> int:
    """Rows a crash right now would keep: read the journal with pyarrow directly."""
    data = journal.read_bytes()
    if not data:
        return 0  # the schema is written with the first batch
    rows: int = pa.ipc.open_stream(data).read_all().num_rows
    return rows


def test_time_based_flush_makes_rows_durable_while_the_writer_is_open(tmp_path: Path) -> None:
    now = [0.0]
    writer = DatasetWriter(tmp_path, flush_s=2.0, clock=lambda: now[0])
    for i in range(5):
        writer.write(update("okx", T0 + i))
        now[0] += 0.3
    (journal,) = tmp_path.rglob(".part-*.journal.tmp")
    assert journal_rows(journal) == 0
    now[0] = 2.5
    writer.write(update("okx", T0 + 5))  # the oldest buffered row is now 2.5 s old
    assert journal_rows(journal) == 6
    assert list(read_dataset(tmp_path)) == []  # nothing is published half-written
    now[0] = 3.0
    writer.write(update("okx", T0 + 6))
    now[0] = 5.5
    writer.flush_due()  # a quiet stream is flushed by the recorder's timer
    assert journal_rows(journal) == 7
    assert recover_dataset(tmp_path) == 0  # a live writer's journal is left alone
    writer.close()
    writer.close()  # idempotent
    assert len(list(read_dataset(tmp_path))) == 7
    assert files_under(tmp_path) == ["venue=okx/symbol=BTC-USDT/date=2022-01-08/part-00001.parquet"]
    with pytest.raises(DatasetError, match="closed"):
        writer.write(update("okx", T0 + 8))


def record_until_interrupted(root: Path) -> None:
    with DatasetWriter(root) as writer:
        for i in range(10):
            writer.write(update("okx", T0 + i))
        raise KeyboardInterrupt


def test_ctrl_c_inside_the_with_block_publishes_everything(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        record_until_interrupted(tmp_path)
    assert len(list(read_dataset(tmp_path))) == 10
    assert not [f for f in files_under(tmp_path) if f.endswith(".tmp")]


CRASHING_WRITER = textwrap.dedent(
    """
    import sys, time
    from arbot.feeds.book_feed import BookUpdate
    from arbot.feeds.dataset import DatasetWriter

    root, t0, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    writer = DatasetWriter(root, flush_rows=100, flush_s=3600.0, file_rows=1000)
    for i in range(n):
        writer.write(BookUpdate("okx", "BTC/USDT", [(1.0, 2.0)], [(3.0, 4.0)], i, t0 + i, i))
    print(n, flush=True)
    time.sleep(60)
    """
)


@pytest.mark.parametrize("torn_bytes", [0, 9], ids=["clean-kill", "torn-last-batch"])
def test_sigkill_loses_only_the_unflushed_tail(tmp_path: Path, torn_bytes: int) -> None:
    root = tmp_path / "data"
    proc = subprocess.Popen(
        [sys.executable, "-c", CRASHING_WRITER, str(root), str(T0), "2550"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "2550"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    # Two parts were published (1000 rows each); rows 2000..2499 sit in a journal
    # (five flushed batches) and rows 2500..2549 were only in memory.
    published = [u.received_ns - T0 for u in read_dataset(root)]
    assert published == list(range(2000))
    (journal,) = root.rglob(".part-*.journal.tmp")
    if torn_bytes:
        with journal.open("r+b") as handle:  # the crash cut the last batch short
            handle.truncate(journal.stat().st_size - torn_bytes)
    expected = 2500 - (100 if torn_bytes else 0)
    with DatasetWriter(root):  # a new writer publishes what the crashed one flushed
        pass
    recovered = [u.received_ns - T0 for u in read_dataset(root)]
    assert recovered == list(range(expected))
    assert not [f for f in files_under(root) if f.endswith(".tmp")]
    assert recover_dataset(root) == 0


def test_merge_across_venues_is_in_received_order(tmp_path: Path) -> None:
    a = [update("binance", T0 + ns) for ns in (1, 4, 4, 9, 10, 15)]
    b = [update("okx", T0 + ns) for ns in (2, 3, 4, 11, 12, 13, 14)]
    with DatasetWriter(tmp_path, flush_rows=2, row_group_rows=2) as writer:
        for u in sorted(a + b, key=lambda u: u.venue):  # venue by venue
            writer.write(u)
    out = list(read_dataset(tmp_path))
    # Ties go to the file whose path sorts first (venue=binance before venue=okx).
    assert out == sorted(a + b, key=lambda u: (u.received_ns, u.venue))


def test_filters_by_venue_symbol_and_time(tmp_path: Path) -> None:
    hour = 3600 * 10**9
    batch = [
        update(venue, T0 + i * hour // 2, symbol=symbol)
        for i in range(8)
        for venue in ("binance", "okx")
        for symbol in ("BTC/USDT", "ETH/USDT")
    ]
    with DatasetWriter(tmp_path, row_group_rows=2) as writer:
        for u in batch:
            writer.write(u)
    start, end = T0 + hour, T0 + 3 * hour  # crosses midnight
    got = list(read_dataset(tmp_path, venues=["okx"], symbols=["ETH/USDT"], start_ns=start))
    assert got == [
        u for u in batch if u.venue == "okx" and u.symbol == "ETH/USDT" and u.received_ns >= start
    ]
    got = list(read_dataset(tmp_path, start_ns=start, end_ns=end))
    expected = [u for u in batch if start <= u.received_ns < end]
    assert sorted(got, key=repr) == sorted(expected, key=repr)
    assert list(read_dataset(tmp_path, venues=["kraken"])) == []


def test_corrupt_and_foreign_files_are_named_tmp_files_ignored(tmp_path: Path) -> None:
    with DatasetWriter(tmp_path) as writer:
        writer.write(update("okx", T0))
    directory = next(tmp_path.rglob("date=*"))
    (directory / ".part-00007.parquet.tmp").write_bytes(b"half a file")
    (directory / "notes.txt").write_text("not data")
    assert len(list(read_dataset(tmp_path))) == 1

    bad = directory / "part-00002.parquet"
    bad.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(DatasetError) as caught:
        list(read_dataset(tmp_path))
    assert str(bad) in str(caught.value)
    assert "\n" not in str(caught.value)
    with pytest.raises(DatasetError, match="part-00002"):
        dataset_info(tmp_path)

    pq.write_table(pa.table({"x": [1, 2]}), bad)
    with pytest.raises(DatasetError, match=r"part-00002\.parquet: not an arbot"):
        list(read_dataset(tmp_path))

    with pytest.raises(DatasetError, match="no such dataset"):
        list(read_dataset(tmp_path / "missing"))


def test_bad_names_are_refused(tmp_path: Path) -> None:
    with DatasetWriter(tmp_path) as writer, pytest.raises(DatasetError, match="venue"):
        writer.write(update("../evil", T0))


MEMORY_ROWS = int(os.environ.get("ARBOT_TEST_DATASET_ROWS", "100000"))


def test_streaming_memory_stays_flat(tmp_path: Path) -> None:
    """Set ARBOT_TEST_DATASET_ROWS=1000000 to run the full-size case."""
    venues = ("binance", "okx")
    bids = [(100.0 - k * 0.01, 1.0 + k) for k in range(5)]
    asks = [(101.0 + k * 0.01, 2.0 + k) for k in range(5)]
    with DatasetWriter(tmp_path, file_rows=MEMORY_ROWS // 4) as writer:
        for i in range(MEMORY_ROWS):
            writer.write(BookUpdate(venues[i & 1], "BTC/USDT", bids, asks, i, T0 + i, i))
    arrow_peak = 0
    count = 0
    in_order = True
    last = -1
    tracemalloc.start()
    try:
        for u in read_dataset(tmp_path):
            in_order = in_order and u.received_ns > last
            last = u.received_ns
            count += 1
            if not count & 0x3FFF:
                arrow_peak = max(arrow_peak, pa.total_allocated_bytes())
        _, python_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert in_order
    assert count == MEMORY_ROWS
    # Held whole, the updates would take ~1.5 KB each in Python objects alone.
    assert python_peak < 24 * 2**20
    assert python_peak < MEMORY_ROWS * 1500 / 10
    assert arrow_peak < 64 * 2**20
