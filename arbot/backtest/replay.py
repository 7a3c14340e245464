"""Replay a book dataset as *moments*: the updates the engine sees at one instant.

Each venue's books are read with :func:`~arbot.feeds.dataset.read_dataset` (streamed,
flat memory, ``start_ns <= received_ns < end_ns``), one stream per venue, and merged.

Market-data latency
-------------------
An update becomes *visible* to the engine at ``visible_ns = received_ns + latency``,
one draw of the venue's data latency per update (:mod:`arbot.backtest.latency`). A
venue's updates keep their recorded order: a draw that would show an update before
the previous one of that venue shows it at the same time instead (a feed delivers in
order; jitter delays, it does not reorder). The engine gets the update with
``received_ns = visible_ns`` (for the engine that is when it was received, so book
ages count from then); ``exchange_ms`` is kept. The venues' streams are merged by
visible time; ties keep the venues in the order given (the settings' order).

Moments
-------
Updates with the same visible time form one :class:`Moment`: snapshots taken in the
same second on two venues are one instant, not two, and the engine applies all of
them before the strategy runs (:meth:`~arbot.engine.engine.Engine.on_moment`).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from arbot.backtest.latency import Latency
from arbot.feeds.book_feed import BookUpdate
from arbot.feeds.dataset import read_dataset


@dataclass(slots=True)
class Moment:
    """Updates visible at the same instant ``ns``, in stream order."""

    ns: int
    updates: list[BookUpdate]


def _received(update: BookUpdate) -> int:
    return update.received_ns


def _delayed(updates: Iterable[BookUpdate], latency: Latency) -> Iterator[BookUpdate]:
    last = 0
    for update in updates:
        visible = update.received_ns + latency.sample_ns()
        visible = max(visible, last)
        last = visible
        yield BookUpdate(
            update.venue,
            update.symbol,
            update.bids,
            update.asks,
            update.exchange_ms,
            visible,
            update.sequence,
        )


def updates(
    root: Path | str,
    books: Iterable[tuple[str, str]],
    *,
    start_ns: int | None = None,
    end_ns: int | None = None,
    data_latency: Mapping[str, Latency] | None = None,
) -> Iterator[BookUpdate]:
    """Every update of ``books`` in visible-time order (see the module docstring)."""
    by_venue: dict[str, list[str]] = {}
    for venue, symbol in books:
        by_venue.setdefault(venue, []).append(symbol)
    streams: list[Iterator[BookUpdate]] = []
    for venue, symbols in by_venue.items():
        stream = read_dataset(
            root, venues=[venue], symbols=symbols, start_ns=start_ns, end_ns=end_ns
        )
        latency = (data_latency or {}).get(venue)
        if latency is not None and not latency.is_zero:
            stream = _delayed(stream, latency)
        streams.append(stream)
    if len(streams) == 1:
        return streams[0]
    return heapq.merge(*streams, key=_received)


def moments(stream: Iterable[BookUpdate]) -> Iterator[Moment]:
    """Group a time-ordered stream (e.g. :func:`updates`) into moments of equal time."""
    moment: Moment | None = None
    for update in stream:
        ns = update.received_ns
        if moment is not None:
            if ns == moment.ns:
                moment.updates.append(update)
                continue
            yield moment
        moment = Moment(ns, [update])
    if moment is not None:
        yield moment


class PlainMoments:
    """Every moment of a stream, each applied in full (the runner's source when the
    strategy has no screen or a data latency has jitter); see
    :class:`~arbot.backtest.columnar.ColumnarMoments` for the screened one."""

    screened = False

    def __init__(self, stream: Iterator[Moment]) -> None:
        self._stream = stream
        self._next = next(stream, None)

    def peek(self) -> Moment | None:
        return self._next

    def pop(self) -> None:
        self._next = next(self._stream, None)

    def skip(self, limit_ns: int | None) -> int:
        return 0


__all__ = ["Moment", "PlainMoments", "moments", "updates"]
