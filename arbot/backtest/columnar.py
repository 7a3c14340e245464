"""The screened replay: books read as columns, the strategy run only where it can act.

Most book updates of an arbitrage backtest change nothing: no two venues cross, so the
strategy returns nothing, risk and the executor never hear of it. Building every
update's ladders as Python objects just to learn that is most of what a naive replay
costs. A strategy that offers a :meth:`~arbot.strategy.base.Strategy.screen` (a list
of top-of-book :class:`~arbot.strategy.base.Crossing` tests, one of which must hold
before it can propose anything) lets this replay skip those updates at C speed:

1. Each part's rows are read in Arrow record batches, never whole (65,536 rows; fewer
   when many books are replayed, about 262,144 decoded rows in all, since every book
   holds one); the best bid and ask of every row are taken from the level lists
   without building them.
2. The parts' batches are merged in visible-time order a *chunk* at a time: every row
   below the smallest "read up to" bound of all parts (reading on until a batch's worth
   of rows is there), so no row of a later chunk can sort before or tie with one of
   this chunk. The merge is a stable sort of the parts
   concatenated in venue order, then file path order, which is exactly the order of the
   plain replay (:mod:`arbot.backtest.replay`): by visible time, ties by venue order,
   then path.
3. Per chunk, each book's best bid and ask are carried forward over the merged rows, the
   screen's tests are evaluated on every row, and a *moment* (rows of one visible time)
   is a *candidate* when a test holds after its last row.
4. :meth:`ColumnarMoments.skip` passes over the moments before the next candidate: the
   updates are counted, the report's spread samples are taken from the columns, the
   clock moves, and the market state is brought up to date (one ``apply`` per book,
   its latest row) before control returns. A candidate moment is built as the plain
   replay builds it and goes through the engine as usual (:meth:`Engine.on_moment`):
   strategy, risk, executor.

While an execution is under way, or a venue event is pending, the runner does not skip:
every moment is applied in full (:meth:`peek`/:meth:`pop`), so an order arriving later
meets the book exactly as the plain replay has it. Results are byte-identical to the
plain replay's; ``tests/backtest/test_screened.py`` checks that on random data, and
that no screen can hide an opportunity.

Data latency must be constant per venue here (the plain replay handles jitter, whose
draws follow each venue's read order); the runner chooses.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, cast

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from arbot.backtest.replay import Moment
from arbot.feeds.book_feed import BookUpdate
from arbot.feeds.dataset import READ_COLUMNS, DatasetError, PartMeta, select_parts

if TYPE_CHECKING:
    from arbot.backtest.clock import ReplayClock
    from arbot.backtest.results import Recorder
    from arbot.strategy.base import Crossing
    from arbot.strategy.context import MarketState

_BATCH_ROWS: Final = 65_536
_ROWS_IN_MEMORY: Final = 262_144  # decoded rows held across all open parts, about
_MIN_BATCH_ROWS: Final = 4_096
_END: Final = 1 << 62  # after every nanosecond a dataset can hold
_SLACK: Final = 1.0 - 1e-9  # the screen errs towards letting a moment through
_NO_FLOAT: Final = pa.scalar(None, pa.float64())
_NO_ROW: Final = pa.scalar(None, pa.uint64())
_PENDING: Final[tuple[tuple[str, str, float, float], ...]] = (("", "", math.nan, math.nan),)
"""A spread sample's tops before they are read (compared by identity)."""


def _ints(array: Any, code: Literal["i", "q", "Q"]) -> list[int]:
    """A null-free integer array as a Python list, at C speed (no numpy needed)."""
    view = memoryview(array.buffers()[1]).cast(code)
    return view[array.offset : array.offset + len(array)].tolist()


def _doubles(array: Any) -> memoryview[float]:
    return memoryview(array.buffers()[1]).cast("d")[array.offset : array.offset + len(array)]


def _best(levels: Any) -> Any:
    """The first level price of each row (NaN where the side is empty), with no copy of
    the levels."""
    offsets = levels.offsets
    n = len(levels)
    starts = offsets.slice(0, n)
    values = levels.values
    if len(values) == 0:
        return pa.repeat(pa.scalar(math.nan, pa.float64()), n)
    safe = pc.min_element_wise(starts, len(values) - 1)
    first = pc.take(values, safe)
    present = pc.greater(offsets.slice(1, n), starts)
    return pc.if_else(present, first, math.nan)


class _Block:
    """One record batch of a part, rows in range only, with what the merge needs."""

    __slots__ = ("_views", "ask0", "batch", "bid0", "path", "pos", "received", "shift", "vis")

    def __init__(self, batch: Any, received: list[int], shift: int, path: Path) -> None:
        bid_px, bid_qty = batch.column("bid_px"), batch.column("bid_qty")
        ask_px, ask_qty = batch.column("ask_px"), batch.column("ask_qty")
        if not bid_qty.offsets.equals(bid_px.offsets) or not ask_qty.offsets.equals(ask_px.offsets):
            raise DatasetError(f"{path}: level prices and amounts disagree in length")
        self.batch = batch
        self.received = received
        self.shift = shift
        self.path = path
        self.pos = 0  # rows before this one are merged already
        ns = batch.column("received_ns")
        self.vis = ns if shift == 0 else pc.add(ns, shift)
        self.bid0 = _best(bid_px)
        self.ask0 = _best(ask_px)
        self._views: tuple[Any, ...] | None = None

    def update(self, i: int, venue: str, symbol: str) -> BookUpdate:
        """Row ``i`` as the plain replay builds it (levels as lists of tuples)."""
        views = self._views
        if views is None:
            batch = self.batch
            views = self._views = (
                _ints(batch.column("bid_px").offsets, "i"),
                _doubles(batch.column("bid_px").values),
                _doubles(batch.column("bid_qty").values),
                _ints(batch.column("ask_px").offsets, "i"),
                _doubles(batch.column("ask_px").values),
                _doubles(batch.column("ask_qty").values),
                batch.column("exchange_ms"),
                batch.column("sequence"),
            )
        bo, bp, bq, ao, ap, aq, exchange_ms, sequence = views
        b0, b1, a0, a1 = bo[i], bo[i + 1], ao[i], ao[i + 1]
        return BookUpdate(
            venue,
            symbol,
            list(zip(bp[b0:b1].tolist(), bq[b0:b1].tolist(), strict=True)),
            list(zip(ap[a0:a1].tolist(), aq[a0:a1].tolist(), strict=True)),
            exchange_ms[i].as_py(),
            self.received[i] + self.shift,
            sequence[i].as_py(),
        )


class _Part:
    """One part file, read a batch at a time within ``[start_ns, end_ns)``.

    ``bound``: every row visible before it has been read (rows at it may follow).
    """

    __slots__ = (
        "_batches",
        "batch_rows",
        "blocks",
        "book",
        "bound",
        "end_ns",
        "meta",
        "shift",
        "start_ns",
    )

    def __init__(
        self,
        meta: PartMeta,
        book: int,
        shift: int,
        start_ns: int | None,
        end_ns: int | None,
        batch_rows: int,
    ) -> None:
        self.meta = meta
        self.batch_rows = batch_rows
        self.book = book
        self.shift = shift
        self.start_ns = start_ns
        self.end_ns = end_ns
        self.blocks: deque[_Block] = deque()
        self.bound = meta.first_ns + shift  # nothing read yet: a lower bound of its rows
        self._batches: Iterator[Any] | None = None

    @property
    def done(self) -> bool:
        return self.bound == _END

    def _read(self) -> Any:
        """The next raw batch, or ``None`` at the end of the file."""
        if self._batches is None:
            lo, hi = self.start_ns, self.end_ns
            groups = [
                i
                for i, (gmin, gmax) in enumerate(self.meta.groups)
                if (lo is None or gmax >= lo) and (hi is None or gmin < hi)
            ]
            self._batches = pq.ParquetFile(str(self.meta.path)).iter_batches(
                batch_size=self.batch_rows,
                row_groups=groups,
                columns=READ_COLUMNS,
                use_threads=False,
            )
        return next(self._batches, None)

    def load(self) -> None:
        """Read the next batch with rows in range (or learn there is none)."""
        path = self.meta.path
        try:
            while True:
                batch = self._read()
                if batch is None:
                    break
                received = _ints(batch.column("received_ns"), "q")
                count = len(received)
                start = 0 if self.start_ns is None else bisect.bisect_left(received, self.start_ns)
                end = count if self.end_ns is None else bisect.bisect_left(received, self.end_ns)
                if start < end:
                    if start or end < count:
                        batch = batch.slice(start, end - start)
                        received = received[start:end]
                    self.blocks.append(_Block(batch, received, self.shift, path))
                    self.bound = received[-1] + self.shift
                if end < count:
                    break  # the rest of the file is at or after end_ns
                if start < end:
                    return
            self.bound = _END
            self._batches = None
        except (pa.ArrowException, OSError) as exc:
            raise DatasetError(f"{path}: unreadable ({' '.join(str(exc).split())})") from exc


def _available(parts: list[_Part], horizon: int) -> int:
    """Rows of ``parts`` read and not merged yet that are visible before ``horizon``."""
    count = 0
    for part in parts:
        for block in part.blocks:
            received = block.received
            hi = bisect.bisect_left(received, horizon - part.shift, block.pos)
            count += hi - block.pos
            if hi < len(received):
                break
    return count


class _Chunk:
    """Rows of every part below one bound, merged; the screen evaluated on them."""

    __slots__ = ("ask", "bid", "cands", "ends", "n", "ns", "order", "rows", "sources", "starts")

    def __init__(
        self,
        pieces: list[tuple[_Part, _Block, int, int]],
        books: int,
        carry: list[tuple[float | None, float | None]],
        crossings: Sequence[tuple[int, float, int, float]] | None,
    ) -> None:
        self.sources = pieces
        self.starts: list[int] = []
        vis, bid, ask, book = [], [], [], []
        at = 0
        for part, block, lo, hi in pieces:
            self.starts.append(at)
            at += hi - lo
            vis.append(block.vis.slice(lo, hi - lo))
            bid.append(block.bid0.slice(lo, hi - lo))
            ask.append(block.ask0.slice(lo, hi - lo))
            book.append(pa.repeat(pa.scalar(part.book, pa.int32()), hi - lo))
        self.n = n = at
        ns_all = pa.concat_arrays(vis)
        if len(pieces) == 1:
            self.order: Any = None
            ns_sorted, bid_all, ask_all = ns_all, bid[0], ask[0]
            book_all = book[0]
        else:
            self.order = order = pc.sort_indices(ns_all)  # stable: ties keep part order
            ns_sorted = pc.take(ns_all, order)
            bid_all = pc.take(pa.concat_arrays(bid), order)
            ask_all = pc.take(pa.concat_arrays(ask), order)
            book_all = pc.take(pa.concat_arrays(book), order)
        self.ns = _ints(ns_sorted, "q")
        if n > 1:
            changes = pc.not_equal(ns_sorted.slice(0, n - 1), ns_sorted.slice(1))
            is_end = pa.concat_arrays([changes, pa.array([True])])
        else:
            is_end = pa.array([True])
        self.ends = _ints(pc.indices_nonzero(is_end), "Q")  # the last row of each moment
        arange = pc.indices_nonzero(pa.repeat(True, n))
        self.bid: list[Any] = []
        self.ask: list[Any] = []
        self.rows: list[Any] = []  # per book: its latest row at or before each row
        for b in range(books):
            mine = pc.equal(book_all, b)
            last_bid, last_ask = carry[b]
            bid_b = pc.fill_null_forward(pc.if_else(mine, bid_all, _NO_FLOAT))
            ask_b = pc.fill_null_forward(pc.if_else(mine, ask_all, _NO_FLOAT))
            if last_bid is not None:
                bid_b = pc.fill_null(bid_b, last_bid)
            if last_ask is not None:
                ask_b = pc.fill_null(ask_b, last_ask)
            self.bid.append(bid_b)
            self.ask.append(ask_b)
            self.rows.append(pc.fill_null_forward(pc.if_else(mine, arange, _NO_ROW)))
        self.cands = self.ends if crossings is None else self._candidates(is_end, crossings)

    def _candidates(
        self, is_end: Any, crossings: Sequence[tuple[int, float, int, float]]
    ) -> list[int]:
        """The last rows of the moments after which some crossing holds."""
        hold: Any = None
        for sell, sell_factor, buy, buy_factor in crossings:
            test = pc.greater(
                pc.multiply(self.bid[sell], sell_factor),
                pc.multiply(self.ask[buy], buy_factor * _SLACK),
            )
            hold = test if hold is None else pc.or_(hold, test)
        if hold is None:
            return []
        return _ints(pc.indices_nonzero(pc.and_(is_end, pc.fill_null(hold, False))), "Q")

    def top(self, book: int, row: int) -> tuple[float, float] | None:
        """Best bid and ask of ``book`` after ``row``; ``None`` when a side is empty or unseen."""
        bid = self.bid[book][row].as_py()
        ask = self.ask[book][row].as_py()
        if bid is None or ask is None or math.isnan(bid) or math.isnan(ask):
            return None
        return bid, ask

    def last_row(self, book: int, pos: int) -> int | None:
        """The latest row of ``book`` before ``pos`` in this chunk, if any."""
        if pos == 0:
            return None
        return cast(int | None, self.rows[book][pos - 1].as_py())

    def locate(self, row: int) -> tuple[_Part, _Block, int]:
        """Which part, batch and batch row the merged ``row`` came from."""
        j = row if self.order is None else self.order[row].as_py()
        k = bisect.bisect_right(self.starts, j) - 1
        part, block, lo, _hi = self.sources[k]
        return part, block, lo + j - self.starts[k]


class ColumnarMoments:
    """Moments of a dataset, with :meth:`skip` for those the screen clears.

    Parameters:
        root: the dataset folder.
        books: ``(venue, symbol)`` to replay, in the settings' venue order.
        shifts: constant data latency per venue, in ns.
        state: the market state to keep up to date over skipped moments.
        clock: moved to the last skipped moment.
        recorder: counts skipped moments and samples their spreads.
    """

    def __init__(
        self,
        root: Path | str,
        books: Sequence[tuple[str, str]],
        *,
        shifts: dict[str, int],
        start_ns: int | None = None,
        end_ns: int | None = None,
        batch_rows: int | None = None,
    ) -> None:
        self.books = list(books)
        self._index = {key: i for i, key in enumerate(self.books)}
        venues = list(dict.fromkeys(venue for venue, _ in self.books))
        rank = {venue: i for i, venue in enumerate(venues)}
        metas = select_parts(Path(root), venues, {s for _, s in self.books}, start_ns, end_ns)
        metas = [m for m in metas if (m.venue, m.symbol) in self._index]
        metas.sort(key=lambda m: (rank[m.venue], str(m.path)))
        # Every book being replayed holds a batch: with many books, smaller batches.
        rows = batch_rows or max(
            _MIN_BATCH_ROWS, min(_BATCH_ROWS, _ROWS_IN_MEMORY // max(1, 2 * len(self.books)))
        )
        self._chunk_rows = rows  # merge at least this many rows at a time (until the end)
        self._parts = [
            _Part(
                m,
                self._index[(m.venue, m.symbol)],
                shifts.get(m.venue, 0),
                start_ns,
                end_ns,
                rows,
            )
            for m in metas
        ]
        self.built = 0
        """Moments built in full so far (the rest were passed over by the screen)."""
        self._crossings: list[tuple[int, float, int, float]] | None = None
        self._screened = False
        self._carry: list[tuple[float | None, float | None]] = [(None, None)] * len(self.books)
        self._chunk_carry = self._carry  # what the current chunk started from
        self._chunk: _Chunk | None = None
        self._pos = 0  # next row of the chunk
        self._moment_index = 0  # index in chunk.ends of the moment holding _pos
        self._cand_index = 0
        self._applied: list[int] = []
        self._peeked: tuple[Moment, int] | None = None
        self._pending_from: tuple[int, int] | None = None  # (index, sampler stride then)
        self.state: MarketState | None = None
        self.clock: ReplayClock | None = None
        self.recorder: Recorder | None = None

    def attach(
        self,
        state: MarketState,
        clock: ReplayClock,
        recorder: Recorder,
        crossings: Sequence[Crossing] | None,
    ) -> None:
        """Start screening with the strategy's crossings (``None``: no screen)."""
        self.state, self.clock, self.recorder = state, clock, recorder
        if crossings is None:
            return
        index = self._index
        self._crossings = [
            (index[c.sell], c.sell_factor, index[c.buy], c.buy_factor)
            for c in crossings
            if c.sell in index and c.buy in index
        ]
        self._screened = True
        if self._chunk is not None:  # the first chunk was read before the screen existed
            self._chunk = self._rebuild(self._chunk)

    @property
    def screened(self) -> bool:
        return self._screened

    # -- chunks --------------------------------------------------------------------------

    def _rebuild(self, chunk: _Chunk) -> _Chunk:
        return _Chunk(chunk.sources, len(self.books), self._chunk_carry, self._crossings)

    def _ensure(self) -> _Chunk | None:
        """The chunk holding the next row, reading the next one when this one is done."""
        chunk = self._chunk
        if chunk is not None and self._pos < chunk.n:
            return chunk
        if chunk is not None:
            self._sync(chunk, chunk.n)
            self._resolve(chunk)
            self._carry = [
                (chunk.bid[b][chunk.n - 1].as_py(), chunk.ask[b][chunk.n - 1].as_py())
                for b in range(len(self.books))
            ]
        pieces = self._merge()
        if not pieces:
            self._chunk = None
            return None
        self._chunk_carry = self._carry
        self._chunk = chunk = _Chunk(pieces, len(self.books), self._carry, self._crossings)
        self._pos = self._moment_index = self._cand_index = 0
        self._applied = [-1] * len(self.books)
        return chunk

    def _merge(self) -> list[tuple[_Part, _Block, int, int]]:
        """The next chunk's rows: every row visible before the smallest bound of the
        parts, reading on until there are ``_chunk_rows`` of them (fewer, larger chunks
        amortise the per-chunk work) or the data ends."""
        parts = self._parts
        while True:
            parts = self._parts = [p for p in parts if p.blocks or not p.done]
            if not parts:
                return []
            horizon = min(p.bound for p in parts)
            waiting = [p for p in parts if p.bound == horizon and not p.done]
            if waiting and _available(parts, horizon) < self._chunk_rows:
                for part in waiting:
                    part.load()
                continue
            pieces = []
            for part in parts:
                blocks = part.blocks
                for block in blocks:
                    received = block.received
                    hi = (
                        len(received)
                        if horizon == _END
                        else bisect.bisect_left(received, horizon - part.shift, block.pos)
                    )
                    if hi > block.pos:
                        pieces.append((part, block, block.pos, hi))
                        block.pos = hi
                    if hi < len(received):
                        break
                while blocks and blocks[0].pos == len(blocks[0].received):
                    blocks.popleft()
            if pieces or not waiting:
                return pieces
            for part in waiting:  # nothing is visible before the horizon yet: read on
                part.load()

    def _sync(self, chunk: _Chunk, pos: int) -> None:
        """Apply each book's latest row before ``pos`` that the state does not hold yet."""
        state = self.state
        if state is None:  # not attached: moments are only being read
            return
        applied = self._applied
        for book in range(len(self.books)):
            row = chunk.last_row(book, pos)
            if row is not None and row > applied[book]:
                state.apply(self._update(chunk, row))
                applied[book] = row

    def _update(self, chunk: _Chunk, row: int) -> BookUpdate:
        part, block, i = chunk.locate(row)
        return block.update(i, part.meta.venue, part.meta.symbol)

    # -- the runner's interface ----------------------------------------------------------

    def peek(self) -> Moment | None:
        """The next moment, in full (its updates built); ``None`` at the end."""
        if self._peeked is not None:
            return self._peeked[0]
        chunk = self._ensure()
        if chunk is None:
            return None
        pos = self._pos
        self._sync(chunk, pos)
        end = chunk.ends[self._moment_index]
        moment = Moment(chunk.ns[pos], [self._update(chunk, row) for row in range(pos, end + 1)])
        self._peeked = (moment, end)
        self.built += 1
        return moment

    def pop(self) -> None:
        """The peeked moment was applied (by :meth:`Engine.on_moment`): move past it."""
        assert self._peeked is not None
        moment, end = self._peeked
        for row, update in zip(range(self._pos, end + 1), moment.updates, strict=True):
            self._applied[self._index[(update.venue, update.symbol)]] = row
        self._pos = end + 1
        self._moment_index += 1
        self._peeked = None

    def skip(self, limit_ns: int | None) -> int:
        """Pass over the moments before the next candidate, none later than ``limit_ns``,
        within the current chunk; returns the updates passed over (0: the next moment must
        be applied, or lies past the limit, or the data is done)."""
        if not self._screened:
            return 0
        chunk = self._ensure()
        if chunk is None:
            return 0
        pos = self._pos
        cands = chunk.cands
        ci = self._cand_index
        while ci < len(cands) and cands[ci] < pos:
            ci += 1
        self._cand_index = ci
        ends = chunk.ends
        if ci < len(cands):
            held = bisect.bisect_left(ends, cands[ci], self._moment_index)
            stop = ends[held - 1] + 1 if held > 0 else 0
        else:
            stop = chunk.n
        ns = chunk.ns
        if limit_ns is not None and stop > pos and ns[stop - 1] > limit_ns:
            stop = bisect.bisect_right(ns, limit_ns, pos, stop)
        if stop <= pos:
            return 0
        self._peeked = None
        first = self._moment_index
        last = bisect.bisect_left(ends, stop, first)  # moments [first, last) end before stop
        self._record(chunk, first, last)
        assert self.clock is not None
        self.clock.advance_to(ns[stop - 1])
        self._pos = stop
        self._moment_index = last
        self._sync(chunk, stop)
        return stop - pos

    def _record(self, chunk: _Chunk, first: int, last: int) -> None:
        recorder = self.recorder
        assert recorder is not None
        ends, ns = chunk.ends, chunk.ns
        if recorder.first_ns is None:
            recorder.first_ns = ns[ends[first]]
        recorder.last_ns = ns[ends[last - 1]]
        recorder.moments += last - first
        if not recorder.spread_books:
            return
        # Which moments the sampler keeps depends on counts only: it is run with
        # placeholders holding the row, whose tops are read when the chunk is done
        # (:meth:`_resolve`), one take per book for all of them.
        sampler = recorder.sampler
        if self._pending_from is None:  # where this chunk's placeholders start
            self._pending_from = (len(sampler.items), sampler.stride)
        sampler.add_due(last - first, lambda k: (ends[first + k], _PENDING))

    def finish(self) -> None:
        """The replay is over: complete what the current chunk owes."""
        if self._chunk is not None:
            self._resolve(self._chunk)

    def _resolve(self, chunk: _Chunk) -> None:
        """Fill in the tops of this chunk's spread samples (see :meth:`_record`)."""
        recorder = self.recorder
        if recorder is None or not recorder.spread_books:
            return
        if self._pending_from is None:
            return
        start, stride = self._pending_from
        self._pending_from = None
        sampler = recorder.sampler
        while stride < sampler.stride:  # each doubling kept every other item
            start, stride = (start + 1) // 2, stride * 2
        items = sampler.items
        pending = [i for i in range(start, len(items)) if items[i][1] is _PENDING]
        if not pending:
            return
        rows = pa.array([items[i][0] for i in pending], pa.uint64())
        per_book = []
        for venue, symbol in recorder.spread_books:
            book = self._index[(venue, symbol)]
            bids = pc.take(chunk.bid[book], rows)
            asks = pc.take(chunk.ask[book], rows)
            # A book with a side empty (NaN) or not seen yet (null) has no top.
            shown = pc.fill_null(pc.invert(pc.or_(pc.is_nan(bids), pc.is_nan(asks))), False)
            per_book.append(
                [
                    (venue, symbol, bid, ask) if ok else None
                    for ok, bid, ask in zip(
                        shown.to_pylist(), bids.to_pylist(), asks.to_pylist(), strict=True
                    )
                ]
            )
        ns = chunk.ns
        for i, tops in zip(pending, zip(*per_book, strict=True), strict=True):
            items[i] = (ns[items[i][0]], tuple(filter(None, tops)))


__all__ = ["ColumnarMoments"]
