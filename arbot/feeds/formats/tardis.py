"""Tardis.dev CSV datasets: ``book_snapshot_N`` and ``incremental_book_L2`` (gzip or plain).

* ``book_snapshot_N``: ``exchange,symbol,timestamp,local_timestamp`` then
  ``asks[i].price,asks[i].amount,bids[i].price,bids[i].amount`` for i = 0..N-1, one full
  book a row (empty cells when the book is thinner than N).
* ``incremental_book_L2``: ``exchange,symbol,timestamp,local_timestamp,is_snapshot,side,
  price,amount``, one level change a row, amount 0 removes the level. Rows of one symbol
  with the same ``local_timestamp`` are one message (one event); a snapshot row that
  follows a non-snapshot row of the same symbol starts a new book (Tardis's rule).

Timestamps are microseconds since the epoch: ``local_timestamp`` (when Tardis received
the message) is the replay clock, ``timestamp`` the exchange's. The venue is the Tardis
exchange id (``binance-futures``). Symbols become ccxt's unified form where the market
type is known (``binance`` spot ``BTCUSDT`` -> ``BTC/USDT``, ``binance-futures``
``BTCUSDT`` -> ``BTC/USDT:USDT``, ``coinbase`` ``BTC-USD`` -> ``BTC/USD``); otherwise the
exchange's own symbol is kept (``deribit`` ``BTC-PERPETUAL``). Several files are merged
by ``local_timestamp``.
"""

from __future__ import annotations

import csv
import heapq
from collections.abc import Iterable, Iterator
from pathlib import Path

from arbot.feeds.formats._text import QUOTES, excerpt, lines, plain, split_symbol
from arbot.feeds.formats.base import PlainLevel, RawBook, RecordingError
from arbot.feeds.formats.snapshot_csv import check_ladders

FORMAT = "tardis"
_KEY = ["exchange", "symbol", "timestamp", "local_timestamp"]
INCREMENTAL = [*_KEY, "is_snapshot", "side", "price", "amount"]
# Tardis exchange ids whose symbols are spot pairs, and those that are linear perpetuals.
SPOT = frozenset(
    {
        "binance",
        "binance-us",
        "bitfinex",
        "bitstamp",
        "coinbase",
        "gate-io",
        "gemini",
        "huobi",
        "kraken",
        "kucoin",
        "okex",
        "bybit-spot",
        "okx",
    }
)
LINEAR_PERPETUAL = frozenset({"binance-futures"})


def snapshot_columns(levels: int) -> list[str]:
    names = list(_KEY)
    for i in range(levels):
        names += [f"asks[{i}].price", f"asks[{i}].amount", f"bids[{i}].price", f"bids[{i}].amount"]
    return names


def looks_like(first_line: str) -> bool:
    """Any Tardis CSV (books, trades, quotes, ...): they share the first four columns."""
    return first_line.startswith("exchange,symbol,timestamp,local_timestamp,")


def is_book(first_line: str) -> bool:
    """A Tardis ``book_snapshot_N`` or ``incremental_book_L2`` header."""
    header = [c.strip().lstrip("\ufeff") for c in first_line.split(",")]
    if header == INCREMENTAL:
        return True
    levels = (len(header) - 4) // 4 if len(header) > 4 else 0
    return levels >= 1 and header == snapshot_columns(levels)


def unified_symbol(exchange: str, raw: str) -> str:
    """ccxt's unified symbol where the Tardis exchange tells the market type, else ``raw``."""
    if exchange not in SPOT and exchange not in LINEAR_PERPETUAL:
        return raw
    base_quote: tuple[str, str] | None = None
    for separator in ("-", "/", "_"):
        if separator in raw:
            base, _, quote = raw.upper().partition(separator)
            if base and quote in QUOTES:
                base_quote = (base, quote)
            break
    else:
        base_quote = split_symbol(raw)
    if base_quote is None:
        return raw
    base, quote = base_quote
    return f"{base}/{quote}:{quote}" if exchange in LINEAR_PERPETUAL else f"{base}/{quote}"


def _micros(text: str, where: str, column: str) -> int:
    if not text.isdigit():
        raise RecordingError(
            f"{where}: {column} {excerpt(text)} is not microseconds since the epoch"
        )
    return int(text)


class _Symbols:
    """Tardis (exchange, symbol) -> unified names, computed once per pair."""

    def __init__(self) -> None:
        self._names: dict[tuple[str, str], str] = {}

    def __call__(self, exchange: str, raw: str, where: str) -> str:
        key = (exchange, raw)
        name = self._names.get(key)
        if name is None:
            if not exchange or not raw:
                raise RecordingError(f"{where}: exchange and symbol must not be empty")
            name = self._names[key] = unified_symbol(exchange, raw)
        return name


def read_file(path: Path) -> Iterator[RawBook]:
    """The book events of one Tardis CSV (either kind), checked as they are read."""
    numbered = lines(path)
    reader = csv.reader(text for _, text in numbered)
    header = [c.strip().lstrip("\ufeff") for c in next(reader, [])]
    if header == INCREMENTAL:
        yield from _incremental(path, reader)
        return
    levels = (len(header) - 4) // 4 if len(header) > 4 else 0
    if levels >= 1 and header == snapshot_columns(levels):
        yield from _snapshots(path, reader, levels)
        return
    raise RecordingError(
        f"{path}:1: not a Tardis book_snapshot_N or incremental_book_L2 header; expected "
        f"{','.join(INCREMENTAL)} or {','.join(snapshot_columns(1))},...; "
        f"got {excerpt(','.join(header), 80)}"
    )


def _snapshots(path: Path, reader: Iterator[list[str]], levels: int) -> Iterator[RawBook]:
    width = 4 + 4 * levels
    names = _Symbols()
    previous = -1
    for row in reader:
        where = f"{path}:{reader.line_num}"  # type: ignore[attr-defined]
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if len(row) != width:
            raise RecordingError(f"{where}: expected {width} columns, got {len(row)}")
        local_us = _micros(row[3], where, "local_timestamp")
        if local_us < previous:
            raise RecordingError(
                f"{where}: local_timestamp {local_us} is earlier than the previous row's "
                f"{previous}; rows must be in time order"
            )
        previous = local_us
        exchange_us = _micros(row[2], where, "timestamp")
        asks: list[PlainLevel] = []
        bids: list[PlainLevel] = []
        for i in range(levels):
            base = 4 + 4 * i
            _level(asks, row[base], row[base + 1], where, f"asks[{i}]")
            _level(bids, row[base + 2], row[base + 3], where, f"bids[{i}]")
        check_ladders(bids, asks, where)
        yield RawBook(
            local_us * 1000,
            where,
            row[0],
            names(row[0], row[1], where),
            True,
            bids,
            asks,
            exchange_us // 1000,
            ordered=True,
        )


def _level(out: list[PlainLevel], raw_price: str, raw_amount: str, where: str, name: str) -> None:
    if not raw_price and not raw_amount:
        return  # a thinner book than the file's N levels
    price = plain(raw_price, where, f"{name}.price")
    amount = plain(raw_amount, where, f"{name}.amount")
    if not price.strip("0.") or not amount.strip("0."):
        raise RecordingError(
            f"{where}: {name} has price {raw_price} and amount {raw_amount}; both must be "
            "positive (both cells empty for a missing level)"
        )
    out.append((price, amount))


def _incremental(path: Path, reader: Iterator[list[str]]) -> Iterator[RawBook]:
    names = _Symbols()
    snapshotting: dict[tuple[str, str], bool] = {}  # was the last row of the book a snapshot row
    pending: RawBook | None = None
    pending_key: tuple[str, str, int] | None = None
    previous = -1
    for row in reader:
        where = f"{path}:{reader.line_num}"  # type: ignore[attr-defined]
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if len(row) != 8:
            raise RecordingError(f"{where}: expected 8 columns, got {len(row)}")
        exchange, raw_symbol, ts, local, is_snapshot, side, raw_price, raw_amount = row
        local_us = _micros(local, where, "local_timestamp")
        if local_us < previous:
            raise RecordingError(
                f"{where}: local_timestamp {local_us} is earlier than the previous row's "
                f"{previous}; rows must be in time order"
            )
        previous = local_us
        if is_snapshot not in ("true", "false"):
            raise RecordingError(
                f"{where}: is_snapshot must be true or false, got {excerpt(is_snapshot)}"
            )
        if side not in ("bid", "ask"):
            raise RecordingError(f"{where}: side must be bid or ask, got {excerpt(side)}")
        price = plain(raw_price, where, "price")
        if not price.strip("0."):
            raise RecordingError(f"{where}: price {raw_price} must be positive")
        amount = plain(raw_amount, where, "amount")
        snapshot = is_snapshot == "true"
        book = (exchange, raw_symbol)
        starts_snapshot = snapshot and not snapshotting.get(book, False)
        snapshotting[book] = snapshot
        key = (exchange, raw_symbol, local_us)
        if pending is None or key != pending_key or starts_snapshot:
            if pending is not None:
                yield pending
            pending_key = key
            pending = RawBook(
                local_us * 1000,
                where,
                exchange,
                names(exchange, raw_symbol, where),
                starts_snapshot,
                [],
                [],
                _micros(ts, where, "timestamp") // 1000,
            )
        else:
            pending.source = where
        (pending.bids if side == "bid" else pending.asks).append((price, amount))
    if pending is not None:
        yield pending


def read(paths: Iterable[Path]) -> Iterator[RawBook]:
    """Events of several Tardis files merged by receive time.

    One book may continue from file to file (one file a day), but two files whose rows
    for the same book interleave are two recordings of it (``book_snapshot_5`` and
    ``book_snapshot_25``, say) and are refused.
    """
    current: dict[tuple[str, str], str] = {}
    finished: dict[tuple[str, str], set[str]] = {}
    merged = heapq.merge(*(read_file(p) for p in paths), key=lambda event: event.time_ns)
    for event in merged:
        key = (event.venue, event.symbol)
        owner = event.source.rpartition(":")[0]
        previous = current.get(key)
        if previous != owner:
            done = finished.setdefault(key, set())
            if owner in done:
                raise RecordingError(
                    f"{event.source}: rows for {event.venue} {event.symbol} interleave with "
                    f"those of {previous}: two recordings of one book; import them separately"
                )
            if previous is not None:
                done.add(previous)
            current[key] = owner
        yield event
