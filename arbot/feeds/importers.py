"""``arbot data import``: recorded books from other tools into arbot's dataset, in one pass.

Each format's reader (:mod:`arbot.feeds.formats`) streams checked events; every event
updates a local book whose top ``depth`` levels become one dataset row. The rows go to
a *staging* dataset inside the output folder (``OUT/.import-<id>/``, which readers
ignore); only when the last input line has been read and checked are its parts moved
into ``OUT``. Any bad input (a truncated gzip, a wrong header, a crossed book, time
going backwards, a sequence gap) stops the import with one line naming the file and
line, and the staging dataset is deleted: the output folder is as it was. A staging
folder left by a killed import is removed by the next import.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import time
import uuid
from bisect import bisect_left, insort
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from arbot.errors import ArbotError
from arbot.feeds.book_feed import BookUpdate
from arbot.feeds.dataset import DatasetWriter, adopt_parts, read_dataset
from arbot.feeds.formats import binance_capture, snapshot_csv, tardis
from arbot.feeds.formats._text import head
from arbot.feeds.formats.base import PlainLevel, RawBook, RecordingError
from arbot.model import Level, OrderBook

FORMATS = ("snapshot-csv", "binance-capture", "tardis", "arbot")
_STAGING_PREFIX = ".import-"
_LOCK = ".lock"
_UNLOCKED_GRACE_S = 60.0


@dataclass
class ImportStats:
    rows: dict[tuple[str, str], int] = field(default_factory=dict)
    first_ns: int | None = None
    last_ns: int | None = None
    files: list[Path] = field(default_factory=list)


def import_books(
    fmt: str,
    source: Path,
    out: Path,
    *,
    depth: int = 20,
    venue: str | None = None,
    symbol: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportStats:
    """Import ``source`` (a file or folder in format ``fmt``) into the dataset at ``out``.

    ``venue``/``symbol`` keep only that venue or symbol. Raises a one-line
    :class:`ArbotError` for any bad input; ``out`` then holds exactly what it held before.
    """
    if fmt not in FORMATS:
        raise ArbotError(f"unknown format {fmt!r}; use one of: {', '.join(FORMATS)}")
    source = Path(source)
    out = Path(out)
    if fmt == "arbot":
        events = None
        if not source.is_dir():
            raise ArbotError(f"{source}: no such folder; give an arbot dataset folder")
        if out.resolve() == source.resolve():
            raise ArbotError(f"{source}: importing a dataset into itself; give another --out")
    else:
        events = _events(fmt, source)
    stats = ImportStats()
    out_existed = out.exists()
    staging = _start_staging(out)
    try:
        with _lock(staging), DatasetWriter(staging, depth=depth, recover=False) as writer:
            updates = _arbot_updates(source) if events is None else _rebuilt(events, depth)
            for count, update in enumerate(updates, 1):
                if (venue and update.venue != venue) or (symbol and update.symbol != symbol):
                    continue
                writer.write(update)
                key = (update.venue, update.symbol)
                stats.rows[key] = stats.rows.get(key, 0) + 1
                if stats.first_ns is None:
                    stats.first_ns = update.received_ns
                stats.last_ns = update.received_ns
                if progress is not None and count % 1000 == 0:
                    progress(count)
        stats.files = adopt_parts(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if not out_existed:
            shutil.rmtree(out, ignore_errors=True)
        raise
    shutil.rmtree(staging, ignore_errors=True)
    if not stats.rows:
        if not out_existed:
            shutil.rmtree(out, ignore_errors=True)
        wanted = " ".join(f"--{k} {v}" for k, v in (("venue", venue), ("symbol", symbol)) if v)
        raise ArbotError(
            f"{source}: no book rows {('match ' + wanted) if wanted else 'found'}; nothing imported"
        )
    return stats


# ----- sources -----------------------------------------------------------------------


def _events(fmt: str, source: Path) -> Iterator[RawBook]:
    """The reader of ``fmt`` over ``source``, after checking the file is that format."""
    if source.is_dir():
        files = _folder_files(fmt, source)
    elif source.is_file():
        files = [source]
    else:
        raise ArbotError(f"{source}: no such file or folder")
    for path in files:
        found = _detect(path)
        if found != fmt:
            hint = (
                f"this is {found}; run: arbot data import {found} {source} --out DIR"
                if found
                else f"not a {fmt} file"
            )
            raise RecordingError(f"{path}: {hint}")
    if fmt == "binance-capture":
        return _chain(binance_capture.CaptureReader(p) for p in files)
    if fmt == "snapshot-csv":
        return snapshot_csv.read(files)
    return tardis.read(files)


def _chain(readers: Iterator[binance_capture.CaptureReader]) -> Iterator[RawBook]:
    for reader in readers:
        yield from reader


def _folder_files(fmt: str, folder: Path) -> list[Path]:
    if fmt == "snapshot-csv":
        files = snapshot_csv.csv_files(folder)
    elif fmt == "tardis":
        # A Tardis download folder also holds trades, quotes, ...: take the book files.
        files = sorted(
            p
            for p in folder.iterdir()
            if p.is_file() and _detect(p) == fmt and tardis.is_book(head(p))
        )
    else:
        files = sorted(p for p in folder.iterdir() if p.is_file() and _detect(p) == fmt)
    if not files:
        kind = "Tardis book_snapshot_N or incremental_book_L2" if fmt == "tardis" else fmt
        raise ArbotError(f"{folder}: no {kind} files in this folder")
    if fmt == "binance-capture" and len(files) > 1:
        raise ArbotError(
            f"{folder}: {len(files)} captures; import one file at a time (each is one symbol)"
        )
    return files


def _detect(path: Path) -> str | None:
    first = head(path)
    if binance_capture.LINE.match(first):
        return "binance-capture"
    if tardis.looks_like(first):
        return "tardis"
    if first.startswith("timestamp,symbol,"):
        return "snapshot-csv"
    return None


def _arbot_updates(source: Path) -> Iterator[BookUpdate]:
    """Our own dataset, each row checked like any other input."""
    for update in read_dataset(source):
        problem = OrderBook(update.venue, update.symbol, update.bids, update.asks).problem()
        if problem:
            raise RecordingError(
                f"{source}: {update.venue} {update.symbol} row received at "
                f"{update.received_ns} ns: {problem}"
            )
        yield update


def _rebuilt(events: Iterator[RawBook], depth: int) -> Iterator[BookUpdate]:
    books: dict[tuple[str, str], _LocalBook] = {}
    for event in events:
        key = (event.venue, event.symbol)
        book = books.get(key)
        if book is None:
            book = books[key] = _LocalBook()
        if event.ordered and event.replace:
            bids, asks = book.replace_ordered(event.bids, event.asks, depth)
        else:
            book.apply(event.bids, event.asks, replace=event.replace)
            bids, asks = book.top(depth)
        if bids and asks and bids[0][0] >= asks[0][0]:
            raise RecordingError(
                f"{event.source}: crossed book after this update: best bid {bids[0][0]} >= "
                f"best ask {asks[0][0]} on {event.venue} {event.symbol}; the recording is "
                "inconsistent"
            )
        yield BookUpdate(
            event.venue,
            event.symbol,
            bids,
            asks,
            event.exchange_ms,
            event.time_ns,
            event.update_id,
        )


class _LocalBook:
    """Levels of one recorded book keyed by float price (the same text always gives the
    same float), prices kept sorted so the top is a slice."""

    __slots__ = ("_ask_prices", "_bid_prices", "asks", "bids")

    def __init__(self) -> None:
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self._bid_prices: list[float] = []  # ascending; the best bid is last
        self._ask_prices: list[float] = []  # ascending; the best ask is first

    def apply(self, bids: list[PlainLevel], asks: list[PlainLevel], *, replace: bool) -> None:
        if replace:
            self.bids.clear()
            self.asks.clear()
            self._bid_prices.clear()
            self._ask_prices.clear()
        for side, prices, levels in (
            (self.bids, self._bid_prices, bids),
            (self.asks, self._ask_prices, asks),
        ):
            for raw_price, raw_amount in levels:
                price = float(raw_price)
                amount = float(raw_amount)
                if amount:
                    if price not in side:
                        insort(prices, price)
                    side[price] = amount
                elif side.pop(price, None) is not None:
                    del prices[bisect_left(prices, price)]

    def replace_ordered(
        self, bids: list[PlainLevel], asks: list[PlainLevel], depth: int
    ) -> tuple[list[Level], list[Level]]:
        """A checked snapshot (best first, strictly ordered): no sorting needed."""
        float_bids = [(float(p), float(q)) for p, q in bids]
        float_asks = [(float(p), float(q)) for p, q in asks]
        self.bids = dict(float_bids)
        self.asks = dict(float_asks)
        self._bid_prices = [p for p, _ in reversed(float_bids)]
        self._ask_prices = [p for p, _ in float_asks]
        return float_bids[:depth], float_asks[:depth]

    def top(self, depth: int) -> tuple[list[Level], list[Level]]:
        bids, asks = self.bids, self.asks
        top_bids = [(p, bids[p]) for p in reversed(self._bid_prices[-depth:])]
        top_asks = [(p, asks[p]) for p in self._ask_prices[:depth]]
        return top_bids, top_asks


# ----- staging -----------------------------------------------------------------------


def _start_staging(out: Path) -> Path:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ArbotError(f"{out}: cannot create the output folder ({exc.strerror})") from None
    _remove_abandoned_staging(out)
    staging = out / f"{_STAGING_PREFIX}{uuid.uuid4().hex[:12]}"
    staging.mkdir()
    return staging


@contextlib.contextmanager
def _lock(staging: Path) -> Iterator[None]:
    """Hold an flock on the staging folder while importing, so no other import removes it."""
    fd = os.open(staging / _LOCK, os.O_RDONLY | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _remove_abandoned_staging(out: Path) -> None:
    for entry in out.glob(f"{_STAGING_PREFIX}*"):
        lock = entry / _LOCK
        try:
            fd = os.open(lock, os.O_RDONLY)
        except FileNotFoundError:
            # No lock yet: an import that is just starting, or one killed before it locked.
            with contextlib.suppress(OSError):
                if time.time() - entry.stat().st_mtime > _UNLOCKED_GRACE_S:
                    shutil.rmtree(entry, ignore_errors=True)
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # another import is running
        finally:
            os.close(fd)
        shutil.rmtree(entry, ignore_errors=True)
