"""The on-disk book dataset: Parquet files that ``arbot record`` and ``arbot data import``
write and ``arbot backtest`` replays. The layout and schema are documented in
``docs/data.md``; in short::

    ROOT/venue=V/symbol=BASE-QUOTE/date=YYYY-MM-DD/part-NNNNN.parquet

one row per :class:`~arbot.feeds.book_feed.BookUpdate`, sorted by ``received_ns``
within each file, levels as four ``list<double>`` columns.

Crash safety
------------
Rows are buffered per (venue, symbol) and flushed as one Arrow record batch when the
buffer holds ``flush_rows`` rows or its oldest row is ``flush_s`` seconds old. A flush
appends the batch to the part's *journal* (``.part-NNNNN.journal.tmp``, an Arrow IPC
stream, fsynced), so a crash loses at most the unflushed tail. A part is *published*
when it is rotated or the writer closes: the journal is rewritten as Parquet under
``.part-NNNNN.parquet.tmp``, fsynced, linked to ``part-NNNNN.parquet`` and the journal
removed. Readers only ever open ``part-*.parquet``, so they never see half a file.
A journal left by a crash (no live writer holds its ``flock``) is turned into a part
by :func:`recover_dataset`, which every new :class:`DatasetWriter` runs first.
"""

from __future__ import annotations

import bisect
import contextlib
import datetime as dt
import fcntl
import heapq
import os
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Final, cast

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from arbot.errors import ArbotError
from arbot.feeds.book_feed import BookUpdate
from arbot.model import Level

FORMAT_VERSION: Final = 1
"""Bumped when the schema changes incompatibly; readers refuse newer versions."""

META_FORMAT: Final = b"arbot.format"
META_VENUE: Final = b"arbot.venue"
META_SYMBOL: Final = b"arbot.symbol"
META_SOURCE: Final = b"arbot.source"  # the journal a part was made from (recovery)

_LEVELS = pa.list_(pa.field("item", pa.float64(), nullable=False))

SCHEMA: Final = pa.schema(
    [
        pa.field("venue", pa.string(), nullable=False),
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("exchange_ms", pa.int64()),
        pa.field("received_ns", pa.int64(), nullable=False),
        pa.field("sequence", pa.int64()),
        pa.field("depth", pa.int32(), nullable=False),
        pa.field("bid_px", _LEVELS, nullable=False),
        pa.field("bid_qty", _LEVELS, nullable=False),
        pa.field("ask_px", _LEVELS, nullable=False),
        pa.field("ask_qty", _LEVELS, nullable=False),
    ]
)
"""One row per book update; see ``docs/data.md``."""

READ_COLUMNS: Final = [  # what a replay reads of each row
    "exchange_ms",
    "received_ns",
    "sequence",
    "bid_px",
    "bid_qty",
    "ask_px",
    "ask_qty",
]

_ROW_GROUP_ROWS: Final = 65_536
_READ_BATCH_ROWS: Final = 4_096  # decoded rows held per open file while reading
_COMPRESSION: Final = "zstd"
_NS_PER_DAY: Final = 86_400 * 10**9
_EPOCH: Final = dt.date(1970, 1, 1)
_PART_RE: Final = re.compile(r"part-(\d+)\.parquet")
_JOURNAL_RE: Final = re.compile(r"\.part-(\d+)\.journal\.tmp")
_PARQUET_TMP_RE: Final = re.compile(r"\.part-(\d+)\.parquet\.tmp")
_SAFE_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class DatasetError(ArbotError):
    """A dataset file is unreadable, foreign or from a newer arbot; or bad writer input."""


@dataclass(frozen=True, slots=True)
class PartitionInfo:
    """One ``venue=/symbol=/date=`` partition: published rows and their time span (UTC)."""

    venue: str
    symbol: str
    date: dt.date
    files: int
    rows: int
    first_received: dt.datetime
    last_received: dt.datetime
    first_ns: int
    last_ns: int


# -- names and paths ---------------------------------------------------------------------


def symbol_dirname(symbol: str) -> str:
    """``BTC/USDT`` → ``BTC-USDT``; ``BTC/USDT:USDT`` → ``BTC-USDT_USDT``."""
    name = symbol.replace("/", "-").replace(":", "_")
    if not _SAFE_NAME.fullmatch(name):
        raise DatasetError(f"symbol {symbol!r} cannot be used as a dataset partition name")
    return name


def _venue_dirname(venue: str) -> str:
    if not _SAFE_NAME.fullmatch(venue):
        raise DatasetError(f"venue {venue!r} cannot be used as a dataset partition name")
    return venue


def utc_day(received_ns: int) -> dt.date:
    """The UTC date a ``received_ns`` falls on (the ``date=`` partition)."""
    return _EPOCH + dt.timedelta(days=received_ns // _NS_PER_DAY)


def partition_dir(root: Path, venue: str, symbol: str, day: dt.date) -> Path:
    venue_part = f"venue={_venue_dirname(venue)}"
    return root / venue_part / f"symbol={symbol_dirname(symbol)}" / f"date={day.isoformat()}"


def _partition_dirs(root: Path) -> list[Path]:
    return sorted(root.glob("venue=*/symbol=*/date=*"))


def _published_parts(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if _PART_RE.fullmatch(p.name))


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _ns_to_datetime(ns: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=ns // 1000)


# -- writing -----------------------------------------------------------------------------


def _batch(venue: str, symbol: str, depth: int | None, rows: list[BookUpdate]) -> Any:
    """Build one record batch of :data:`SCHEMA` from buffered updates."""
    n = len(rows)
    columns: list[Any] = [
        pa.array([venue] * n, pa.string()),
        pa.array([symbol] * n, pa.string()),
        pa.array([u.exchange_ms for u in rows], pa.int64()),
        pa.array([u.received_ns for u in rows], pa.int64()),
        pa.array([u.sequence for u in rows], pa.int64()),
    ]
    if depth is None:
        columns.append(pa.array([max(len(u.bids), len(u.asks)) for u in rows], pa.int32()))
    else:
        columns.append(pa.array([depth] * n, pa.int32()))
    for side in ("bids", "asks"):
        sides: list[list[Level]] = [getattr(u, side) for u in rows]
        offsets = [0]
        total = 0
        for levels in sides:
            total += len(levels)
            offsets.append(total)
        flat = [level for levels in sides for level in levels]
        px = [level[0] for level in flat]
        qty = [level[1] for level in flat]
        off = pa.array(offsets, pa.int32())
        columns.append(pa.ListArray.from_arrays(off, pa.array(px, pa.float64()), type=_LEVELS))
        columns.append(pa.ListArray.from_arrays(off, pa.array(qty, pa.float64()), type=_LEVELS))
    return pa.RecordBatch.from_arrays(columns, schema=SCHEMA)


def _file_schema(venue: str, symbol: str, source: str) -> Any:
    return SCHEMA.with_metadata(
        {
            META_FORMAT: str(FORMAT_VERSION).encode(),
            META_VENUE: venue.encode(),
            META_SYMBOL: symbol.encode(),
            META_SOURCE: source.encode(),
        }
    )


@dataclass(slots=True)
class _Part:
    """One open part: its journal, the buffered rows, and what it has absorbed so far."""

    venue: str
    symbol: str
    directory: Path
    number: int
    day_start_ns: int
    day_end_ns: int
    source: str
    journal_fd: int  # an O_RDONLY descriptor that holds the flock and serves fsync
    sink: Any
    writer: Any
    rows: list[BookUpdate] = field(default_factory=list)
    buffered_since: float = 0.0
    opened_at: float = 0.0
    written: int = 0
    last_ns: int = -(2**63)

    @property
    def journal(self) -> Path:
        return self.directory / f".part-{self.number:05d}.journal.tmp"


class DatasetWriter:
    """Records :class:`BookUpdate` values into a dataset directory.

    Use it as a context manager (``with DatasetWriter(root) as w: w.write(update)``), so
    Ctrl-C (``KeyboardInterrupt``) still publishes every part. ``close()`` is idempotent.

    * ``flush_rows`` / ``flush_s``: a partition's buffer is appended to its journal when it
      holds that many rows or its oldest row is that old (checked on every ``write`` and
      by :meth:`flush_due`, which a recorder should call on a timer for quiet streams).
    * ``file_rows`` / ``file_s``: a part is published and a new one started after that
      many rows or seconds; also at a UTC date change and when ``received_ns`` goes
      backwards (so every file is sorted by ``received_ns``).
    * ``depth``: keep at most this many levels per side (``None`` keeps all).
    * ``recover``: first publish journals left by crashed writers (:func:`recover_dataset`).

    Updates are buffered by reference: do not mutate an update's level lists after
    writing it (feeds replace them wholesale, so they never do).
    """

    def __init__(
        self,
        root: Path | str,
        *,
        depth: int | None = None,
        flush_rows: int = 10_000,
        flush_s: float = 2.0,
        file_rows: int = 1_000_000,
        file_s: float = 3600.0,
        row_group_rows: int = _ROW_GROUP_ROWS,
        compression: str = _COMPRESSION,
        recover: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if depth is not None and depth < 1:
            raise ValueError("depth must be positive")
        if flush_rows < 1 or file_rows < 1 or row_group_rows < 1:
            raise ValueError("row counts must be positive")
        self.root = Path(root)
        self.depth = depth
        self.flush_rows = flush_rows
        self.flush_s = flush_s
        self.file_rows = file_rows
        self.file_s = file_s
        self.row_group_rows = row_group_rows
        self.compression = compression
        self._clock = clock
        self._parts: dict[tuple[str, str], _Part] = {}
        self._next_check = 0.0
        self._closed = False
        self.rows_written = 0
        self.published: list[Path] = []
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatasetError(f"{self.root}: cannot create dataset directory ({exc})") from exc
        if recover:
            recover_dataset(self.root)

    # context manager ---------------------------------------------------------------------

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._closed

    # writing -----------------------------------------------------------------------------

    def write(self, update: BookUpdate) -> None:
        """Buffer one update; flush or rotate its part when due."""
        if self._closed:
            raise DatasetError("the dataset writer is closed")
        ns = update.received_ns
        if self.depth is not None and (
            len(update.bids) > self.depth or len(update.asks) > self.depth
        ):
            update = BookUpdate(
                update.venue,
                update.symbol,
                update.bids[: self.depth],
                update.asks[: self.depth],
                update.exchange_ms,
                ns,
                update.sequence,
            )
        key = (update.venue, update.symbol)
        now = self._clock()
        part = self._parts.get(key)
        if part is not None and (
            not part.day_start_ns <= ns < part.day_end_ns
            or ns < part.last_ns
            or part.written + len(part.rows) >= self.file_rows
            or now - part.opened_at >= self.file_s
        ):
            self._publish(part)
            part = None
        if part is None:
            part = self._open(update.venue, update.symbol, ns, now)
        if not part.rows:
            part.buffered_since = now
        part.rows.append(update)
        part.last_ns = ns
        if len(part.rows) >= self.flush_rows:
            self._flush(part)
        if now >= self._next_check:
            self.flush_due()

    def flush_due(self) -> None:
        """Flush every buffer whose oldest row is ``flush_s`` old; publish parts ``file_s`` old."""
        now = self._clock()
        self._next_check = now + min(self.flush_s, 0.5)
        for part in list(self._parts.values()):
            if now - part.opened_at >= self.file_s:
                self._publish(part)
            elif part.rows and now - part.buffered_since >= self.flush_s:
                self._flush(part)

    def flush(self) -> None:
        """Append every buffered row to its journal now (it survives a crash from here on)."""
        for part in list(self._parts.values()):
            self._flush(part)

    def close(self) -> None:
        """Flush and publish every open part. Idempotent; the writer is unusable afterwards."""
        if self._closed:
            return
        self._closed = True
        errors: list[str] = []
        for key, part in list(self._parts.items()):
            try:
                self._publish(part)
            except (OSError, pa.ArrowException, DatasetError) as exc:
                errors.append(f"{part.journal}: {exc}")
                self._parts.pop(key, None)
        if errors:
            raise DatasetError("; ".join(errors))

    # internals ---------------------------------------------------------------------------

    def _open(self, venue: str, symbol: str, ns: int, now: float) -> _Part:
        day = utc_day(ns)
        directory = partition_dir(self.root, venue, symbol, day)
        directory.mkdir(parents=True, exist_ok=True)
        number = _next_number(directory)
        while True:
            journal = directory / f".part-{number:05d}.journal.tmp"
            try:
                lock_fd = os.open(journal, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                number += 1
                continue
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            # Recovery may have taken the empty journal for a dead one before the lock.
            with contextlib.suppress(FileNotFoundError):
                if os.stat(journal).st_ino == os.fstat(lock_fd).st_ino:
                    break
            os.close(lock_fd)
        source = f"{journal.name}@{uuid.uuid4().hex}"
        sink = pa.OSFile(str(journal), "wb")
        writer = pa.ipc.new_stream(sink, _file_schema(venue, symbol, source))
        day_start = (ns // _NS_PER_DAY) * _NS_PER_DAY
        part = _Part(
            venue=venue,
            symbol=symbol,
            directory=directory,
            number=number,
            day_start_ns=day_start,
            day_end_ns=day_start + _NS_PER_DAY,
            source=source,
            journal_fd=lock_fd,
            sink=sink,
            writer=writer,
            opened_at=now,
        )
        self._parts[(venue, symbol)] = part
        return part

    def _flush(self, part: _Part) -> None:
        if not part.rows:
            return
        batch = _batch(part.venue, part.symbol, self.depth, part.rows)
        part.writer.write_batch(batch)
        part.sink.flush()
        os.fsync(part.journal_fd)
        part.written += len(part.rows)
        self.rows_written += len(part.rows)
        part.rows = []

    def _publish(self, part: _Part) -> None:
        """Flush, turn the journal into ``part-NNNNN.parquet``, drop the journal."""
        self._flush(part)
        self._parts.pop((part.venue, part.symbol), None)
        part.writer.close()
        part.sink.close()
        try:
            if part.written:
                path = _journal_to_parquet(
                    part.journal, part.number, self.row_group_rows, self.compression
                )
                self.published.append(path)
            part.journal.unlink()
            _fsync_dir(part.directory)
        finally:
            os.close(part.journal_fd)  # releases the flock


def _next_number(directory: Path) -> int:
    highest = 0
    for entry in directory.iterdir():
        match = (
            _PART_RE.fullmatch(entry.name)
            or _JOURNAL_RE.fullmatch(entry.name)
            or _PARQUET_TMP_RE.fullmatch(entry.name)
        )
        if match:
            highest = max(highest, int(match.group(1)))
    return highest + 1


def adopt_parts(staging: Path | str, root: Path | str) -> list[Path]:
    """Move every published part of the dataset at ``staging`` into ``root``.

    Parts keep their partition and take the next free numbers there (hard links, so an
    existing part is never replaced). Used by imports, which write a whole import to a
    staging dataset and adopt it only once every input line has been checked.
    """
    staging, root = Path(staging), Path(root)
    adopted: list[Path] = []
    for directory in _partition_dirs(staging):
        target = root / directory.relative_to(staging)
        target.mkdir(parents=True, exist_ok=True)
        number = _next_number(target)
        for part in _published_parts(directory):
            while True:
                destination = target / f"part-{number:05d}.parquet"
                try:
                    os.link(part, destination)
                except FileExistsError:
                    number += 1
                    continue
                break
            part.unlink()
            adopted.append(destination)
            number += 1
        _fsync_dir(target)
    return adopted


def _read_journal(journal: Path) -> tuple[Any, list[Any]]:
    """The schema and every complete batch of a journal (a torn last batch is dropped)."""
    batches: list[Any] = []
    with pa.OSFile(str(journal), "rb") as source:
        try:
            reader = pa.ipc.open_stream(source)
        except (pa.ArrowException, OSError):
            return None, []  # crashed before the schema was written: nothing was flushed
        while True:
            try:
                batches.append(reader.read_next_batch())
            except StopIteration:
                break
            except (pa.ArrowException, OSError):
                break  # torn tail of a crash
        return reader.schema, batches


def _journal_to_parquet(journal: Path, number: int, row_group_rows: int, compression: str) -> Path:
    """Rewrite a journal as a published part; return its path."""
    schema, batches = _read_journal(journal)
    directory = journal.parent
    tmp = directory / f".part-{number:05d}.parquet.tmp"
    writer = pq.ParquetWriter(
        str(tmp),
        schema,
        compression=compression,
        write_statistics=["received_ns"],
        use_dictionary=["venue", "symbol"],
    )
    try:
        pending: list[Any] = []
        pending_rows = 0
        for batch in batches:
            pending.append(batch)
            pending_rows += batch.num_rows
            if pending_rows >= row_group_rows:
                writer.write_table(pa.Table.from_batches(pending), row_group_size=row_group_rows)
                pending, pending_rows = [], 0
        if pending:
            writer.write_table(pa.Table.from_batches(pending), row_group_size=row_group_rows)
    finally:
        writer.close()
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    while True:  # link, never replace: another writer may have taken this number
        final = directory / f"part-{number:05d}.parquet"
        try:
            os.link(tmp, final)
        except FileExistsError:
            number = _next_number(directory)
            continue
        break
    tmp.unlink()
    return final


def recover_dataset(root: Path | str) -> int:
    """Publish the journals that crashed writers left behind; return the rows recovered.

    A journal another live writer holds (its ``flock``) is left alone. A journal whose
    part was already published (a crash between publishing and deleting it) is deleted.
    Stale ``.part-*.parquet.tmp`` files without a journal are deleted.
    """
    rows = 0
    for directory in _partition_dirs(Path(root)):
        for entry in sorted(directory.iterdir()):
            if _PARQUET_TMP_RE.fullmatch(entry.name):
                number = int(_PARQUET_TMP_RE.fullmatch(entry.name).group(1))  # type: ignore[union-attr]
                if not (directory / f".part-{number:05d}.journal.tmp").exists():
                    entry.unlink(missing_ok=True)
                continue
            match = _JOURNAL_RE.fullmatch(entry.name)
            if not match:
                continue
            try:
                fd = os.open(entry, os.O_RDONLY)
            except FileNotFoundError:
                continue  # published by its writer meanwhile
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a live writer owns it
                if not entry.exists():
                    continue
                rows += _recover_journal(entry, int(match.group(1)))
            finally:
                os.close(fd)
    return rows


def _recover_journal(journal: Path, number: int) -> int:
    schema, batches = _read_journal(journal)
    rows = int(sum(b.num_rows for b in batches))
    if schema is not None and rows:
        source = (schema.metadata or {}).get(META_SOURCE)
        already = any(
            (pq.read_schema(str(p)).metadata or {}).get(META_SOURCE) == source
            for p in _published_parts(journal.parent)
        )
        if already:
            rows = 0
        else:
            _journal_to_parquet(journal, number, _ROW_GROUP_ROWS, _COMPRESSION)
    journal.unlink()
    (journal.parent / f".part-{number:05d}.parquet.tmp").unlink(missing_ok=True)
    _fsync_dir(journal.parent)
    return rows


# -- reading -----------------------------------------------------------------------------


@dataclass(slots=True)
class PartMeta:
    """A published part's footer, checked: what and when it holds, per row group."""

    path: Path
    venue: str
    symbol: str
    rows: int
    first_ns: int
    last_ns: int
    groups: list[tuple[int, int]]  # per row group: (min, max) received_ns


def _fail(path: Path, problem: str) -> DatasetError:
    return DatasetError(f"{path}: {problem}")


def _inspect(path: Path) -> PartMeta:
    """Read a part's footer and check that it is one of ours."""
    try:
        meta = pq.ParquetFile(str(path)).metadata
    except (pa.ArrowException, OSError) as exc:
        raise _fail(path, f"not a readable Parquet file ({_one_line(exc)})") from exc
    kv: dict[bytes, bytes] = meta.metadata or {}
    version = kv.get(META_FORMAT)
    if version is None:
        raise _fail(path, "not an arbot book dataset file (no arbot.format metadata)")
    if not version.isdigit() or int(version) > FORMAT_VERSION:
        raise _fail(path, f"written by a newer arbot (format {version.decode(errors='replace')})")
    schema = meta.schema.to_arrow_schema()
    for name in READ_COLUMNS:
        if schema.get_field_index(name) < 0 or schema.field(name).type != SCHEMA.field(name).type:
            raise _fail(path, f"column {name!r} is missing or has the wrong type")
    index = schema.get_field_index("received_ns")
    groups: list[tuple[int, int]] = []
    for i in range(meta.num_row_groups):
        group = meta.row_group(i)
        if group.num_rows == 0:
            continue
        stats = group.column(index).statistics
        if stats is None or not stats.has_min_max:
            raise _fail(path, "received_ns has no statistics")
        groups.append((int(stats.min), int(stats.max)))
    return PartMeta(
        path=path,
        venue=kv.get(META_VENUE, b"").decode(),
        symbol=kv.get(META_SYMBOL, b"").decode(),
        rows=int(meta.num_rows),
        first_ns=min((g[0] for g in groups), default=0),
        last_ns=max((g[1] for g in groups), default=0),
        groups=groups,
    )


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _f64(array: Any) -> list[float]:
    """A float64 array without nulls as Python floats, at C speed (no numpy needed)."""
    view = memoryview(array.buffers()[1]).cast("d")
    return cast(list[float], view[array.offset : array.offset + len(array)].tolist())


def _i64(array: Any) -> list[int | None]:
    if array.null_count:
        return cast(list[int | None], array.to_pylist())
    view = memoryview(array.buffers()[1]).cast("q")
    return cast(list[int | None], view[array.offset : array.offset + len(array)].tolist())


def _i32(array: Any) -> list[int]:
    view = memoryview(array.buffers()[1]).cast("i")
    return view[array.offset : array.offset + len(array)].tolist()


class _Cursor:
    """Reads one file batch by batch (one row group at a time) within [start, end)."""

    __slots__ = (
        "ask_off",
        "ask_px",
        "ask_qty",
        "batches",
        "bid_off",
        "bid_px",
        "bid_qty",
        "end",
        "end_ns",
        "exchange_ms",
        "meta",
        "ns",
        "pos",
        "sequence",
        "start_ns",
    )

    def __init__(self, meta: PartMeta, start_ns: int | None, end_ns: int | None) -> None:
        self.meta = meta
        self.start_ns = start_ns
        self.end_ns = end_ns
        self.batches: Iterator[Any] | None = None
        self.ns: list[int] = []
        self.pos = 0
        self.end = 0
        self.exchange_ms: list[int | None] = []
        self.sequence: list[int | None] = []
        self.bid_off: list[int] = []
        self.bid_px: list[float] = []
        self.bid_qty: list[float] = []
        self.ask_off: list[int] = []
        self.ask_px: list[float] = []
        self.ask_qty: list[float] = []

    def open(self) -> None:
        lo = self.start_ns
        hi = self.end_ns
        groups = [
            i
            for i, (gmin, gmax) in enumerate(self.meta.groups)
            if (lo is None or gmax >= lo) and (hi is None or gmin < hi)
        ]
        try:
            handle = pq.ParquetFile(str(self.meta.path))
            self.batches = handle.iter_batches(
                batch_size=_READ_BATCH_ROWS,
                row_groups=groups,
                columns=READ_COLUMNS,
                use_threads=False,
            )
        except (pa.ArrowException, OSError) as exc:
            raise _fail(self.meta.path, f"unreadable ({_one_line(exc)})") from exc

    def load(self) -> bool:
        """Move to the next batch with rows in range; False when the file is done."""
        assert self.batches is not None
        while True:
            try:
                batch = next(self.batches)
            except StopIteration:
                self.batches = None
                return False
            except (pa.ArrowException, OSError) as exc:
                raise _fail(self.meta.path, f"unreadable ({_one_line(exc)})") from exc
            ns: list[int] = _i64(batch.column("received_ns"))  # type: ignore[assignment]
            start = 0 if self.start_ns is None else bisect.bisect_left(ns, self.start_ns)
            end = len(ns) if self.end_ns is None else bisect.bisect_left(ns, self.end_ns)
            if start >= end:
                if self.end_ns is not None and end < len(ns):
                    self.batches = None
                    return False
                continue
            self.ns, self.pos, self.end = ns, start, end
            self.exchange_ms = _i64(batch.column("exchange_ms"))
            self.sequence = _i64(batch.column("sequence"))
            bid_px, bid_qty = batch.column("bid_px"), batch.column("bid_qty")
            ask_px, ask_qty = batch.column("ask_px"), batch.column("ask_qty")
            if bid_qty.offsets != bid_px.offsets or ask_qty.offsets != ask_px.offsets:
                raise _fail(self.meta.path, "level prices and amounts disagree in length")
            self.bid_off, self.ask_off = _i32(bid_px.offsets), _i32(ask_px.offsets)
            self.bid_px, self.bid_qty = _f64(bid_px.values), _f64(bid_qty.values)
            self.ask_px, self.ask_qty = _f64(ask_px.values), _f64(ask_qty.values)
            return True

    def rows(self, stop: int) -> Iterator[BookUpdate]:
        venue, symbol = self.meta.venue, self.meta.symbol
        ns, exchange_ms, sequence = self.ns, self.exchange_ms, self.sequence
        bo, bp, bq = self.bid_off, self.bid_px, self.bid_qty
        ao, ap, aq = self.ask_off, self.ask_px, self.ask_qty
        for i in range(self.pos, stop):
            b0, b1, a0, a1 = bo[i], bo[i + 1], ao[i], ao[i + 1]
            yield BookUpdate(
                venue,
                symbol,
                list(zip(bp[b0:b1], bq[b0:b1], strict=False)),
                list(zip(ap[a0:a1], aq[a0:a1], strict=False)),
                exchange_ms[i],
                ns[i],
                sequence[i],
            )
        self.pos = stop


def select_parts(
    root: Path,
    venues: Iterable[str] | None,
    symbols: Iterable[str] | None,
    start_ns: int | None,
    end_ns: int | None,
) -> list[PartMeta]:
    """The published parts of these venues and symbols with rows in ``[start_ns, end_ns)``
    (by their footers' statistics); every footer is checked (:class:`DatasetError`)."""
    venue_set = None if venues is None else set(venues)
    symbol_set = None if symbols is None else set(symbols)
    symbol_dirs = None if symbol_set is None else {symbol_dirname(s) for s in symbol_set}
    first_day = None if start_ns is None else utc_day(start_ns)
    last_day = None if end_ns is None else utc_day(end_ns - 1)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such dataset directory")
    selected: list[PartMeta] = []
    for directory in _partition_dirs(root):
        venue_dir = directory.parent.parent.name.removeprefix("venue=")
        symbol_dir = directory.parent.name.removeprefix("symbol=")
        try:
            day = dt.date.fromisoformat(directory.name.removeprefix("date="))
        except ValueError:
            continue
        if venue_set is not None and venue_dir not in venue_set:
            continue
        if symbol_dirs is not None and symbol_dir not in symbol_dirs:
            continue
        if (first_day is not None and day < first_day) or (last_day is not None and day > last_day):
            continue
        for path in _published_parts(directory):
            meta = _inspect(path)
            if venue_set is not None and meta.venue not in venue_set:
                continue
            if symbol_set is not None and meta.symbol not in symbol_set:
                continue
            if not meta.rows:
                continue
            if (start_ns is not None and meta.last_ns < start_ns) or (
                end_ns is not None and meta.first_ns >= end_ns
            ):
                continue
            selected.append(meta)
    return selected


def read_dataset(
    root: Path | str,
    *,
    venues: Iterable[str] | None = None,
    symbols: Iterable[str] | None = None,
    start_ns: int | None = None,
    end_ns: int | None = None,
) -> Iterator[BookUpdate]:
    """Stream published updates in ``received_ns`` order (ties: by file path), merged
    across every selected partition, with ``start_ns <= received_ns < end_ns``.

    Memory does not grow with the number of rows: files are opened only when the merge
    reaches their first row and read one row group at a time. Every selected file's
    footer is checked before the first update is yielded; a corrupt or foreign file
    raises :class:`DatasetError` naming it.
    """
    files = select_parts(Path(root), venues, symbols, start_ns, end_ns)
    files.sort(key=lambda m: (m.first_ns, str(m.path)))
    return _merge(files, start_ns, end_ns)


def _merge(files: list[PartMeta], start_ns: int | None, end_ns: int | None) -> Iterator[BookUpdate]:
    # Heap entries: (next received_ns, order, opened?, cursor). An unopened file sits in
    # the heap under its first received_ns (a lower bound of its first row in range).
    order = {str(m.path): i for i, m in enumerate(sorted(files, key=lambda m: str(m.path)))}
    heap: list[tuple[int, int, bool, _Cursor]] = [
        (m.first_ns, order[str(m.path)], False, _Cursor(m, start_ns, end_ns)) for m in files
    ]
    heapq.heapify(heap)
    while heap:
        _, rank, opened, cursor = heapq.heappop(heap)
        if not opened:
            cursor.open()
            if cursor.load():
                heapq.heappush(heap, (cursor.ns[cursor.pos], rank, True, cursor))
            continue
        while True:
            if heap:
                bound_ns, bound_rank = heap[0][0], heap[0][1]
                cut = bisect.bisect_right if rank < bound_rank else bisect.bisect_left
                stop = cut(cursor.ns, bound_ns, cursor.pos, cursor.end)
            else:
                stop = cursor.end
            yield from cursor.rows(stop)
            if stop < cursor.end:
                heapq.heappush(heap, (cursor.ns[stop], rank, True, cursor))
                break
            if not cursor.load():
                break


def dataset_info(root: Path | str) -> list[PartitionInfo]:
    """Per ``venue/symbol/date`` partition: files, rows and the received-time span."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such dataset directory")
    infos: list[PartitionInfo] = []
    for directory in _partition_dirs(root):
        try:
            day = dt.date.fromisoformat(directory.name.removeprefix("date="))
        except ValueError:
            continue
        by_symbol: dict[tuple[str, str], list[PartMeta]] = {}
        for path in _published_parts(directory):
            meta = _inspect(path)
            if meta.rows:
                by_symbol.setdefault((meta.venue, meta.symbol), []).append(meta)
        for (venue, symbol), metas in sorted(by_symbol.items()):
            infos.append(
                PartitionInfo(
                    venue=venue,
                    symbol=symbol,
                    date=day,
                    files=len(metas),
                    rows=sum(m.rows for m in metas),
                    first_received=_ns_to_datetime(min(m.first_ns for m in metas)),
                    last_received=_ns_to_datetime(max(m.last_ns for m in metas)),
                    first_ns=min(m.first_ns for m in metas),
                    last_ns=max(m.last_ns for m in metas),
                )
            )
    return infos


__all__ = [
    "FORMAT_VERSION",
    "READ_COLUMNS",
    "SCHEMA",
    "DatasetError",
    "DatasetWriter",
    "PartMeta",
    "PartitionInfo",
    "adopt_parts",
    "dataset_info",
    "read_dataset",
    "recover_dataset",
    "select_parts",
    "symbol_dirname",
    "utc_day",
]
