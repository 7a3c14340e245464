"""Replay mode: serve recorded order books instead of the simulated makers.

``open_replay(path)`` recognises the recording, reads it once to check it and learn what
it needs (venues, symbols, each market's tick and lot), and returns a :class:`Replay`.
:meth:`Replay.sim_config` gives a simulator configuration for exactly that data (makers
stopped), and :meth:`Replay.run` feeds the recorded book events to a running
:class:`~arbot.sim.server.SimServer`, paced by the recorded timestamps. Each event goes
through :meth:`SimVenue.apply_maker_levels` and :meth:`SimVenue.publish`, so clients see
ordinary depth diffs with the venue's own update ids, and orders they send trade against
the recorded liquidity.

Formats:

* **Binance websocket capture** (hftbacktest's collector; gzip or plain text), one
  message a line: ``<local receive time ns> <raw JSON>``. ``<sym>@depth@100ms`` (or
  ``@depth``, ``@depth@0ms``) diffs are replayed; ``@trade``, ``@bookTicker`` and other
  streams are skipped. The REST depth snapshot is a line holding
  ``{"lastUpdateId": ..., "bids": ..., "asks": ...}``, wherever it is in the file: diffs
  before it are buffered, and the book is rebuilt as Binance documents it (drop
  ``u <= lastUpdateId``; the first diff applied must have ``U <= lastUpdateId+1 <= u``;
  then each ``U`` is the previous ``u + 1``; a gap waits for a later snapshot). Served
  as venue ``binance`` (Binance protocol).
* **10-level snapshot CSVs** ``orderbook_*.csv``, columns
  ``timestamp,symbol,b1..b10,bv1..bv10,a1..a10,av1..av10`` (any N levels), one full
  snapshot per row, timestamps ISO (UTC unless an offset is given). The symbol's suffix
  names the venue (``LINKUSDT.BNC`` -> ``binance`` on the Binance protocol,
  ``LINKUSDT.HB`` -> ``huobi`` on the OKX protocol). A folder replays every
  ``orderbook_*.csv`` in it, merged by time (rows of the same second on several venues
  go out together); a single file replays the venues its rows name. Each row becomes
  the level changes against the venue's previous row (vanished levels get 0).

Ticks and lots are inferred from the data, per venue and symbol: the finest decimal
place any price (amount) uses, so every recorded level is on the grid. Bad data
raises :class:`ReplayError` with one line naming the file, the line and the fix.
"""

from __future__ import annotations

import asyncio
import heapq
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from arbot.feeds.formats import binance_capture, snapshot_csv
from arbot.feeds.formats._text import head, is_zero, split_symbol
from arbot.feeds.formats.base import RawBook, RecordingError
from arbot.sim.book import BUY, SELL
from arbot.sim.config import SimConfig
from arbot.sim.venue import SimMarket

if TYPE_CHECKING:
    from arbot.sim.server import SimServer
    from arbot.sim.venue import BookDiff

BINANCE_CAPTURE = "binance-capture"
SNAPSHOT_CSV = "snapshot-csv"

EXPECTED = (
    "expected a Binance websocket capture (gzip or text, lines '<receive time ns> <JSON>', "
    "with a REST depth snapshot line), a 10-level book snapshot CSV (columns "
    "timestamp,symbol,b1..b10,bv1..bv10,a1..a10,av1..av10) or a folder of orderbook_*.csv"
)

# Yield to the event loop at least this often when replaying as fast as possible.
YIELD_EVERY = 256
# Quote assets the simulator's config treats as worth 1 USD (no [assets] table needed).
STABLE = frozenset({"USDT", "USDC", "USD", "FDUSD"})
QUOTE_BALANCE = Decimal(1_000_000)
MIN_BASE_BALANCE = Decimal(100)


ReplayError = RecordingError
"""The recording cannot be replayed; the message is one line naming file and line."""


Level = tuple[int, int]


@dataclass(frozen=True, slots=True)
class ReplayEvent:
    """One recorded book event, in the grid of its market (ticks -> lots; 0 removes).

    ``replace`` marks a full snapshot: levels of the venue's book not listed are removed.
    ``update_id`` is the capture's own final update id (Binance ``u``, or the snapshot's
    ``lastUpdateId``), ``None`` for CSV rows; clients never see it.
    """

    time_ns: int
    venue: str
    symbol: str
    bids: list[Level]
    asks: list[Level]
    replace: bool
    source: str
    update_id: int | None = None


@dataclass(frozen=True, slots=True)
class ReplayStats:
    """What :meth:`Replay.run` did: events applied, diffs published, recorded time span."""

    events: int
    published: int
    first_ns: int | None
    last_ns: int | None
    elapsed_s: float

    @property
    def recorded_s(self) -> float:
        if self.first_ns is None or self.last_ns is None:
            return 0.0
        return (self.last_ns - self.first_ns) / 1e9


@dataclass(slots=True)
class _Grid:
    """The finest decimal place seen in prices and in amounts, and the first mid price."""

    price_places: int = 0
    amount_places: int = 0
    mid: Decimal | None = None

    def see(self, levels: Iterable[tuple[str, str]]) -> None:
        price_places, amount_places = self.price_places, self.amount_places
        for price, amount in levels:
            price_places = max(price_places, len(price.partition(".")[2].rstrip("0")))
            amount_places = max(amount_places, len(amount.partition(".")[2].rstrip("0")))
        self.price_places, self.amount_places = price_places, amount_places

    def see_mid(self, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> None:
        if self.mid is not None:
            return
        best_bid = max((Decimal(p) for p, q in bids if not is_zero(q)), default=None)
        best_ask = min((Decimal(p) for p, q in asks if not is_zero(q)), default=None)
        if best_bid is not None and best_ask is not None:
            self.mid = (best_bid + best_ask) / 2
        else:
            self.mid = best_bid if best_bid is not None else best_ask


class _CrossCheck:
    """Tracks a capture's book during the scan to refuse one that ends up crossed."""

    def __init__(self) -> None:
        # float prices: exact enough to order prices of fewer than 16 significant digits
        self.bids: set[float] = set()
        self.asks: set[float] = set()
        self._bid_heap: list[float] = []  # negated prices
        self._ask_heap: list[float] = []

    def apply(self, event: RawBook, where: str) -> None:
        if event.replace:
            self.bids.clear()
            self.asks.clear()
            self._bid_heap.clear()
            self._ask_heap.clear()
        for price, amount in event.bids:
            self._store(self.bids, self._bid_heap, float(price), -1.0, amount)
        for price, amount in event.asks:
            self._store(self.asks, self._ask_heap, float(price), 1.0, amount)
        best_bid = self._best(self.bids, self._bid_heap, -1.0)
        best_ask = self._best(self.asks, self._ask_heap, 1.0)
        if best_bid is not None and best_ask is not None and best_bid >= best_ask:
            raise RecordingError(
                f"{where}: crossed book after this update: best bid {best_bid} >= best ask "
                f"{best_ask}; the recording is inconsistent"
            )

    @staticmethod
    def _store(side: set[float], heap: list[float], price: float, sign: float, amount: str) -> None:
        if is_zero(amount):
            side.discard(price)
        elif price not in side:
            side.add(price)
            heapq.heappush(heap, price * sign)

    @staticmethod
    def _best(side: set[float], heap: list[float], sign: float) -> float | None:
        while heap and heap[0] * sign not in side:
            heapq.heappop(heap)
        return heap[0] * sign if heap else None


# ----- the replay ---------------------------------------------------------------------


class Replay:
    """A checked recording, ready to serve. Build with :func:`open_replay`."""

    def __init__(self, kind: str, paths: list[Path], label: Path) -> None:
        self.kind = kind
        self.paths = tuple(paths)
        self.label = label
        # (venue, symbol) -> market, with the grid that venue's data uses
        self.markets: dict[tuple[str, str], SimMarket] = {}
        self.protocols: dict[str, str] = {}
        self.event_count = 0
        self.first_ns: int | None = None
        self.last_ns: int | None = None
        self._mids: dict[str, Decimal] = {}

    # ----- what the simulator needs -------------------------------------------------

    @property
    def venues(self) -> dict[str, list[str]]:
        """Venue name -> symbols it serves."""
        out: dict[str, list[str]] = {}
        for venue, symbol in self.markets:
            out.setdefault(venue, []).append(symbol)
        return out

    def sim_config(self, *, seed: int = 7, port: int = 0) -> SimConfig:
        """A simulator for exactly this data: its venues and markets, makers stopped
        (``updates_per_second = 0``), generous balances and the default keys."""
        symbols = sorted({s for _, s in self.markets}, key=lambda s: s.split("/")[1] not in STABLE)
        usd: dict[str, float] = {}
        for symbol in symbols:
            base, quote = symbol.split("/")
            mid = float(self._mids.get(symbol) or 1)
            quote_usd = 1.0 if quote in STABLE else usd.setdefault(quote, 1.0)
            usd.setdefault(base, mid * quote_usd)
        assets = {
            a: {"usd": value, "volatility": 0.0} for a, value in usd.items() if a not in STABLE
        }
        venues: dict[str, dict[str, Any]] = {}
        for name, venue_symbols in self.venues.items():
            balances: dict[str, Decimal] = {}
            for symbol in venue_symbols:
                base, quote = symbol.split("/")
                balances[quote] = max(balances.get(quote, Decimal(0)), QUOTE_BALANCE)
                price = self._mids.get(symbol) or Decimal(1)
                base_amount = max(MIN_BASE_BALANCE, (QUOTE_BALANCE / price).to_integral_value())
                balances[base] = max(balances.get(base, Decimal(0)), base_amount)
            venues[name] = {
                "protocol": self.protocols[name],
                "symbols": venue_symbols,
                "markets": {
                    symbol: {
                        "tick": self.markets[(name, symbol)].tick,
                        "lot": self.markets[(name, symbol)].lot,
                        "min_amount": self.markets[(name, symbol)].min_amount,
                        "min_notional": self.markets[(name, symbol)].min_notional,
                    }
                    for symbol in venue_symbols
                },
                "updates_per_second": 0,
                "balances": balances,
                "makers": {"levels": 1, "dislocation_every_s": 0},
            }
        document = {
            "seed": seed,
            "port": port,
            "assets": assets,
            "venues": venues,
        }
        try:
            return SimConfig.model_validate(document)
        except ValidationError as exc:
            problem = exc.errors()[0]
            raise RecordingError(
                f"{self.label}: cannot build a simulator for this data: "
                f"{'.'.join(str(p) for p in problem['loc'])}: {problem['msg']}"
            ) from None

    # ----- events -------------------------------------------------------------------

    def events(self) -> Iterator[ReplayEvent]:
        """Every book event, in replay order, converted to the markets' grids."""
        if self.kind == BINANCE_CAPTURE:
            yield from self._capture_events()
        else:
            yield from self._csv_events()

    def _capture_events(self) -> Iterator[ReplayEvent]:
        path = self.paths[0]
        ((venue, symbol), market), *_ = self.markets.items()
        units = _Units(market)
        for raw in binance_capture.CaptureReader(path, validate_all=False):
            source = raw.source
            yield ReplayEvent(
                raw.time_ns,
                venue,
                symbol,
                units(raw.bids, source),
                units(raw.asks, source),
                raw.replace,
                source,
                raw.update_id,
            )

    def _csv_events(self) -> Iterator[ReplayEvent]:
        books: dict[tuple[str, str], tuple[dict[int, int], dict[int, int]]] = {}
        converters = {key: _Units(market) for key, market in self.markets.items()}
        for row in snapshot_csv.read(self.paths):
            key = (row.venue, row.symbol)
            units = converters[key]
            bids = dict(units(row.bids, row.source))
            asks = dict(units(row.asks, row.source))
            previous = books.get(key)
            books[key] = (bids, asks)
            if previous is None:
                yield ReplayEvent(
                    row.time_ns,
                    row.venue,
                    row.symbol,
                    list(bids.items()),
                    list(asks.items()),
                    True,
                    row.source,
                )
                continue
            yield ReplayEvent(
                row.time_ns,
                row.venue,
                row.symbol,
                _changes(previous[0], bids),
                _changes(previous[1], asks),
                False,
                row.source,
            )

    # ----- serving ------------------------------------------------------------------

    def apply(self, server: SimServer, event: ReplayEvent) -> BookDiff | None:
        """Apply one event to ``server``'s venue and publish it; the diff sent, if any."""
        venue = server.venues.get(event.venue)
        market = venue.markets.get(event.symbol) if venue is not None else None
        if venue is None or market is None:
            raise RecordingError(
                f"{self.label}: the simulator has no venue {event.venue!r} listing "
                f"{event.symbol}; build it from Replay.sim_config()"
            )
        expected = self.markets[(event.venue, event.symbol)]
        if market.tick != expected.tick or market.lot != expected.lot:
            raise RecordingError(
                f"{self.label}: {event.venue} {event.symbol} has tick {market.tick} and lot "
                f"{market.lot} in the simulator but the data needs tick {expected.tick} and lot "
                f"{expected.lot}; build the simulator from Replay.sim_config()"
            )
        bids, asks = event.bids, event.asks
        if event.replace:
            book = venue.books[event.symbol]
            listed_bids = {p for p, _ in bids}
            listed_asks = {p for p, _ in asks}
            bids = [(p, 0) for p, _ in book.depth(BUY) if p not in listed_bids] + bids
            asks = [(p, 0) for p, _ in book.depth(SELL) if p not in listed_asks] + asks
        venue.apply_maker_levels(event.symbol, bids, asks)
        return venue.publish(event.symbol)

    async def run(
        self, server: SimServer, *, speed: float = 1.0, max_events: int | None = None
    ) -> ReplayStats:
        """Replay every event (or the first ``max_events``) into ``server``.

        Events are paced by their recorded timestamps divided by ``speed``; events with
        the same timestamp go out together. ``speed <= 0`` or infinite replays as fast as
        possible, yielding to the event loop every few hundred events so clients keep up.
        The simulated makers of the replayed venues are stopped first. The books keep
        the last recorded state when the recording ends.
        """
        for name in self.venues:
            server.set_rate(name, 0)  # the recording replaces the simulated makers
        loop = asyncio.get_running_loop()
        fast = not speed > 0 or math.isinf(speed)
        started = loop.time()
        origin: int | None = None
        applied = published = since_yield = 0
        first_ns: int | None = None
        last_ns: int | None = None
        for event in self.events():
            if max_events is not None and applied >= max_events:
                break
            if origin is None:
                origin = event.time_ns
            new_time = event.time_ns != last_ns
            if not fast and new_time:
                delay = started + (event.time_ns - origin) / 1e9 / speed - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)  # the recorded pace itself
                    since_yield = 0
            if since_yield >= YIELD_EVERY and (new_time or since_yield >= 16 * YIELD_EVERY):
                await asyncio.sleep(0)
                since_yield = 0
            if self.apply(server, event) is not None:
                published += 1
            applied += 1
            since_yield += 1
            if first_ns is None:
                first_ns = event.time_ns
            last_ns = event.time_ns
        return ReplayStats(applied, published, first_ns, last_ns, loop.time() - started)

    # ----- opening ------------------------------------------------------------------

    def _scan_capture(self) -> None:
        path = self.paths[0]
        reader = binance_capture.CaptureReader(path)
        grid = _Grid()
        cross = _CrossCheck()
        for raw in reader:
            grid.see(raw.bids)
            grid.see(raw.asks)
            if raw.replace:
                grid.see_mid(raw.bids, raw.asks)
            cross.apply(raw, raw.source)
            self._count(raw.time_ns)
        symbol = reader.symbol or ""  # the reader raises when no diff names the symbol
        self.protocols["binance"] = "binance"
        self._add_markets({("binance", symbol): grid})

    def _scan_csv(self) -> None:
        grids: dict[tuple[str, str], _Grid] = {}
        for row in snapshot_csv.read(self.paths):
            key = (row.venue, row.symbol)
            self.protocols[row.venue] = snapshot_csv.protocol_of(row.venue)
            grid = grids.setdefault(key, _Grid())
            grid.see(row.bids)
            grid.see(row.asks)
            grid.see_mid(row.bids, row.asks)
            self._count(row.time_ns)
        if not grids:
            raise RecordingError(f"{self.label}: no snapshot rows; nothing to replay")
        self._add_markets(grids)

    def _count(self, time_ns: int) -> None:
        self.event_count += 1
        if self.first_ns is None:
            self.first_ns = time_ns
        self.last_ns = time_ns

    def _add_markets(self, grids: dict[tuple[str, str], _Grid]) -> None:
        for (venue, symbol), grid in sorted(grids.items()):
            base, quote = symbol.split("/")
            tick = Decimal(1).scaleb(-grid.price_places)
            lot = Decimal(1).scaleb(-grid.amount_places)
            min_notional = Decimal(5) if quote in STABLE else Decimal(0)
            self.markets[(venue, symbol)] = SimMarket(
                symbol, base, quote, tick, lot, lot, Decimal(10**9), min_notional
            )
            if grid.mid is not None:
                self._mids[symbol] = grid.mid


def _power_of_ten(step: Decimal) -> int | None:
    """``k`` when ``step == 10**-k`` (k >= 0), else None."""
    exponent = step.normalize().as_tuple().exponent
    if not isinstance(exponent, int) or exponent > 0 or step != Decimal(1).scaleb(exponent):
        return None
    return -exponent


def _scaled(plain: str, places: int) -> int | None:
    """A plain decimal string times ``10**places``, or None if that is not a whole number."""
    whole, _, fraction = plain.partition(".")
    if len(fraction.rstrip("0")) > places:
        return None
    return int(whole + fraction[:places].ljust(places, "0"))


class _Units:
    """Converts a market's decimal strings to whole ticks and lots, exactly as
    :meth:`SimMarket.ticks` and :meth:`SimMarket.lots` would, remembering recent ones."""

    CACHE = 200_000

    def __init__(self, market: SimMarket) -> None:
        self.market = market
        self._price_places = _power_of_ten(market.tick)
        self._amount_places = _power_of_ten(market.lot)
        self._ticks: dict[str, int | None] = {}
        self._lots: dict[str, int | None] = {}

    def __call__(self, levels: list[tuple[str, str]], source: str) -> list[Level]:
        ticks_of, lots_of = self._ticks, self._lots
        if len(ticks_of) > self.CACHE or len(lots_of) > self.CACHE:
            ticks_of.clear()
            lots_of.clear()
        out = []
        for price, amount in levels:
            ticks = ticks_of.get(price, -1)
            if ticks == -1:
                ticks = ticks_of[price] = _convert(price, self._price_places, self.market.ticks)
            if ticks is None:
                raise RecordingError(
                    f"{source}: price {price} is not a multiple of tick {self.market.tick}"
                )
            lots = lots_of.get(amount, -1)
            if lots == -1:
                lots = lots_of[amount] = _convert(amount, self._amount_places, self.market.lots)
            if lots is None:
                raise RecordingError(
                    f"{source}: amount {amount} is not a multiple of lot {self.market.lot}"
                )
            out.append((ticks, lots))
        return out


def _convert(plain: str, places: int | None, exact: Callable[[Decimal], int | None]) -> int | None:
    """Whole units of a decimal string: by moving the point when the step is a power of
    ten (the same result, faster), else by the market's own conversion."""
    return _scaled(plain, places) if places is not None else exact(Decimal(plain))


def _changes(old: dict[int, int], new: dict[int, int]) -> list[Level]:
    changes = [(price, 0) for price in old if price not in new]
    changes += [(price, lots) for price, lots in new.items() if old.get(price) != lots]
    return changes


def open_replay(path: Path) -> Replay:
    """Recognise and check a recording; raises :class:`ReplayError` (one line) if unusable."""
    path = Path(path)
    if path.is_dir():
        csvs = snapshot_csv.csv_files(path)
        if not csvs:
            raise RecordingError(f"{path}: not a known replay format; {EXPECTED}")
        replay = Replay(SNAPSHOT_CSV, csvs, path)
        replay._scan_csv()
        return replay
    if not path.is_file():
        raise RecordingError(f"{path}: no such file; {EXPECTED}")
    first = head(path)
    if binance_capture.LINE.match(first):
        replay = Replay(BINANCE_CAPTURE, [path], path)
        replay._scan_capture()
        return replay
    if first.startswith("timestamp,") or ".csv" in path.suffixes:
        replay = Replay(SNAPSHOT_CSV, [path], path)
        replay._scan_csv()
        return replay
    raise RecordingError(f"{path}: not a known replay format; {EXPECTED}")


__all__ = [
    "BINANCE_CAPTURE",
    "SNAPSHOT_CSV",
    "Replay",
    "ReplayError",
    "ReplayEvent",
    "ReplayStats",
    "open_replay",
    "split_symbol",
]
