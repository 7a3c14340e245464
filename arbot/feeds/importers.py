"""``arbot data import``: recorded books from other tools into arbot's dataset.

The readers are the simulator's replay readers (``arbot.sim.replay``), which check a whole
file before anything is written: a truncated gzip, a bad line, a crossed book, time going
backwards or a sequence gap is one line naming the file and line, and the output folder
is left untouched. Each recorded event updates a local book (exact integer ticks and
lots on the venue's inferred grid) whose top ``depth`` levels become one dataset row.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from arbot.errors import ArbotError, NotAvailableError
from arbot.feeds.book_feed import BookUpdate
from arbot.feeds.dataset import DatasetWriter
from arbot.sim.venue import SimMarket

FORMATS = ("snapshot-csv", "binance-capture", "tardis", "arbot")
PLANNED = frozenset({"tardis", "arbot"})


@dataclass
class ImportStats:
    rows: dict[tuple[str, str], int] = field(default_factory=dict)
    first_ns: int | None = None
    last_ns: int | None = None


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
    :class:`ArbotError` for any bad input before writing anything.
    """
    from arbot.sim.replay import open_replay

    if fmt not in FORMATS:
        raise ArbotError(f"unknown format {fmt!r}; use one of: {', '.join(FORMATS)}")
    if fmt in PLANNED:
        raise NotAvailableError(f"importing {fmt} is not available in this release yet")
    replay = open_replay(source)
    if replay.kind != fmt:
        raise ArbotError(
            f"{source}: this is {replay.kind}, not {fmt}; run: arbot data import "
            f"{replay.kind} {source} --out DIR"
        )
    books: dict[tuple[str, str], _LocalBook] = {}
    stats = ImportStats()
    with DatasetWriter(out, depth=depth) as writer:
        for count, event in enumerate(replay.events(), 1):
            key = (event.venue, event.symbol)
            if (venue and event.venue != venue) or (symbol and event.symbol != symbol):
                continue
            book = books.get(key)
            if book is None:
                book = books[key] = _LocalBook(replay.markets[key])
            book.apply(event.bids, event.asks, replace=event.replace)
            top_bids, top_asks = book.top(depth)
            writer.write(
                BookUpdate(
                    event.venue,
                    event.symbol,
                    top_bids,
                    top_asks,
                    None,
                    event.time_ns,
                    event.update_id,
                )
            )
            stats.rows[key] = stats.rows.get(key, 0) + 1
            if stats.first_ns is None:
                stats.first_ns = event.time_ns
            stats.last_ns = event.time_ns
            if progress is not None and count % 1000 == 0:
                progress(count)
    return stats


class _LocalBook:
    """Exact levels (ticks → lots) of one recorded book, prices kept sorted, top as floats."""

    def __init__(self, market: SimMarket) -> None:
        self.market = market
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self._bid_prices: list[int] = []  # ascending; the best bid is last
        self._ask_prices: list[int] = []  # ascending; the best ask is first
        self._prices: dict[int, float] = {}
        self._amounts: dict[int, float] = {}

    def apply(
        self, bids: list[tuple[int, int]], asks: list[tuple[int, int]], *, replace: bool
    ) -> None:
        if replace:
            self.bids.clear()
            self.asks.clear()
            self._bid_prices.clear()
            self._ask_prices.clear()
        for side, prices, levels in (
            (self.bids, self._bid_prices, bids),
            (self.asks, self._ask_prices, asks),
        ):
            for price, lots in levels:
                if lots:
                    if price not in side:
                        insort(prices, price)
                    side[price] = lots
                elif side.pop(price, None) is not None:
                    del prices[bisect_left(prices, price)]

    def top(self, depth: int) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        bids = [self._level(p, self.bids[p]) for p in reversed(self._bid_prices[-depth:])]
        asks = [self._level(p, self.asks[p]) for p in self._ask_prices[:depth]]
        return bids, asks

    def _level(self, ticks: int, lots: int) -> tuple[float, float]:
        price = self._prices.get(ticks)
        if price is None:
            price = self._prices[ticks] = float(self.market.price(ticks))
        amount = self._amounts.get(lots)
        if amount is None:
            amount = self._amounts[lots] = float(self.market.amount(lots))
        return price, amount
