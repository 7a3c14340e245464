"""Book snapshot CSVs: ``timestamp,symbol,b1..bN,bv1..bvN,a1..aN,av1..avN``, one row a book.

Timestamps are ISO date-times (UTC unless an offset is given). The symbol's suffix
names the venue (``LINKUSDT.BNC`` -> ``binance``, ``LINKUSDT.HB`` -> ``huobi``). A folder
reads every ``orderbook_*.csv`` in it, merged by time; each venue and symbol must come
from one file. Every row is a full snapshot (``replace``).
"""

from __future__ import annotations

import csv
import heapq
import itertools
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from arbot.feeds.formats._text import excerpt, is_zero, lines, plain, split_symbol
from arbot.feeds.formats.base import PlainLevel, RawBook, RecordingError

FORMAT = "snapshot-csv"
# Symbol suffix in the snapshot CSVs -> (venue name, protocol the simulator serves it on).
VENUES = {
    "BNC": ("binance", "binance"),
    "BINANCE": ("binance", "binance"),
    "HB": ("huobi", "okx"),
    "HUOBI": ("huobi", "okx"),
    "OKX": ("okx", "okx"),
    "OKEX": ("okx", "okx"),
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def columns(levels: int) -> list[str]:
    names = ["timestamp", "symbol"]
    for prefix in ("b", "bv", "a", "av"):
        names += [f"{prefix}{i}" for i in range(1, levels + 1)]
    return names


def csv_files(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.iterdir() if p.name.startswith("orderbook_") and ".csv" in p.suffixes
    )


def protocol_of(venue: str) -> str:
    """The simulator protocol a CSV venue is served on."""
    return next(protocol for name, protocol in VENUES.values() if name == venue)


def _parse_time(text: str, where: str) -> int:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise RecordingError(
            f"{where}: timestamp {excerpt(text)} is not an ISO date-time "
            "like 2021-08-20 00:00:00 (UTC when no offset is given)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1000


def _venue(raw_symbol: str, where: str) -> tuple[str, str]:
    exchange_id, dot, suffix = raw_symbol.strip().rpartition(".")
    known = ", ".join(f".{s}" for s in VENUES)
    if not dot or suffix.upper() not in VENUES:
        raise RecordingError(
            f"{where}: symbol {excerpt(raw_symbol)} has no known venue suffix ({known})"
        )
    pair = split_symbol(exchange_id)
    if pair is None:
        raise RecordingError(
            f"{where}: cannot tell base from quote in {exchange_id!r}; the symbol must end "
            "with a known quote currency (USDT, BTC, ...)"
        )
    return VENUES[suffix.upper()][0], f"{pair[0]}/{pair[1]}"


def read_file(path: Path) -> Iterator[RawBook]:
    """The rows of one CSV, checked: columns, time order, ladders, no crossed book."""
    numbered = lines(path)
    reader = csv.reader(text for _, text in numbered)
    header = [c.strip().lstrip("\ufeff") for c in next(reader, [])]
    levels = (len(header) - 2) // 4 if len(header) > 2 else 0
    if levels < 1 or header != columns(levels):
        raise RecordingError(
            f"{path}:1: columns must be timestamp,symbol,b1..bN,bv1..bvN,a1..aN,av1..avN "
            f"(N levels, e.g. 10); got {excerpt(','.join(header), 80)}"
        )
    width = len(header)
    symbols: dict[str, tuple[str, str]] = {}
    previous: tuple[int, str] | None = None
    for row in reader:
        where = f"{path}:{reader.line_num}"
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if len(row) != width:
            raise RecordingError(f"{where}: expected {width} columns, got {len(row)}")
        time_ns = _parse_time(row[0], where)
        if previous is not None and time_ns < previous[0]:
            raise RecordingError(
                f"{where}: timestamp {row[0]} is earlier than the previous row's "
                f"{previous[1]}; rows must be in time order"
            )
        previous = (time_ns, row[0])
        if row[1] not in symbols:
            symbols[row[1]] = _venue(row[1], where)
        venue, symbol = symbols[row[1]]
        bids = _side(row, 2, 2 + levels, levels, where, "b")
        asks = _side(row, 2 + 2 * levels, 2 + 3 * levels, levels, where, "a")
        check_ladders(bids, asks, where)
        yield RawBook(time_ns, where, venue, symbol, True, bids, asks, ordered=True)


def check_ladders(bids: list[PlainLevel], asks: list[PlainLevel], where: str) -> None:
    """Refuse a snapshot whose levels are out of order or whose best bid >= best ask."""
    bid_prices = [float(p) for p, _ in bids]
    ask_prices = [float(p) for p, _ in asks]
    if (
        all(a > b for a, b in itertools.pairwise(bid_prices))
        and all(a < b for a, b in itertools.pairwise(ask_prices))
        and not (bid_prices and ask_prices and bid_prices[0] >= ask_prices[0])
    ):
        return  # floats order short decimals exactly; the exact check below names the fault
    for side, ladder, better in (("bid", bids, 1), ("ask", asks, -1)):
        prices = [Decimal(p) for p, _ in ladder]
        for p1, p2 in itertools.pairwise(prices):
            if (p1 - p2) * better <= 0:
                raise RecordingError(
                    f"{where}: {side} prices {p1} then {p2} are not strictly "
                    f"{'falling' if better > 0 else 'rising'}; the best level must come first"
                )
    if bids and asks and Decimal(bids[0][0]) >= Decimal(asks[0][0]):
        raise RecordingError(
            f"{where}: crossed book: best bid {bids[0][0]} >= best ask {asks[0][0]}; "
            "a snapshot needs best bid < best ask"
        )


_CELL = r"(?!0*(?:\.0*)?(?:,|$))\d+(?:\.\d+)?"  # a plain decimal that is not zero
_POSITIVE_CELLS = re.compile(rf"{_CELL}(?:,{_CELL})*")


def _side(
    row: list[str], prices: int, amounts: int, levels: int, where: str, prefix: str
) -> list[PlainLevel]:
    price_cells = row[prices : prices + levels]
    amount_cells = row[amounts : amounts + levels]
    joined = ",".join(price_cells) + "," + ",".join(amount_cells)
    if _POSITIVE_CELLS.fullmatch(joined):
        # every cell is a plain positive decimal (the common case): no per-cell checks
        return list(zip(price_cells, amount_cells, strict=True))
    out = []
    for i in range(levels):
        raw_price, raw_amount = row[prices + i].strip(), row[amounts + i].strip()
        if not raw_price and not raw_amount:
            continue  # a thin book: fewer levels than columns
        price = plain(raw_price, where, f"{prefix}{i + 1}")
        amount = plain(raw_amount, where, f"{prefix}v{i + 1}")
        if is_zero(price) or is_zero(amount):
            raise RecordingError(
                f"{where}: level {prefix}{i + 1} has price {raw_price} and amount {raw_amount}; "
                "both must be positive (leave both cells empty for a missing level)"
            )
        out.append((price, amount))
    return out


def read(paths: Iterable[Path]) -> Iterator[RawBook]:
    """Rows of several CSVs merged by time; each venue and symbol must come from one file."""
    owners: dict[tuple[str, str], str] = {}
    merged = heapq.merge(*(read_file(p) for p in paths), key=lambda event: event.time_ns)
    for event in merged:
        key = (event.venue, event.symbol)
        owner = event.source.rpartition(":")[0]
        if owners.setdefault(key, owner) != owner:
            raise RecordingError(
                f"{event.source}: rows for {event.venue} {event.symbol} also come from "
                f"{owners[key]}; give each venue and symbol one file"
            )
        yield event


def looks_like(first_line: str, path: Path) -> bool:
    return first_line.startswith("timestamp,") or (
        ".csv" in path.suffixes and path.name.startswith("orderbook_")
    )
