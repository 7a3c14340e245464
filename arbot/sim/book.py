"""A price-time-priority limit order book in integer ticks and lots.

Prices are whole numbers of the market's tick and amounts whole numbers of its lot, so
matching is exact and fast; the venue converts to decimals at the edges. Resting
orders are queued per price level (FIFO); the book remembers which levels changed so
the venue can publish exactly those as a depth diff.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

BUY = "buy"
SELL = "sell"

# Order states, named as Binance names them; protocols translate.
NEW = "NEW"
PARTIALLY_FILLED = "PARTIALLY_FILLED"
FILLED = "FILLED"
CANCELED = "CANCELED"
EXPIRED = "EXPIRED"
REJECTED = "REJECTED"
OPEN_STATES = frozenset({NEW, PARTIALLY_FILLED})


@dataclass(slots=True, eq=False)
class SimOrder:
    """An order inside the simulator. ``account is None`` marks a simulated maker."""

    order_id: int
    account: str | None
    symbol: str
    side: str
    type: str  # limit | market
    time_in_force: str  # GTC | IOC | FOK
    price: int | None  # ticks; None for market orders
    amount: int  # lots
    client_order_id: str = ""
    filled: int = 0
    quote_filled: Decimal = Decimal(0)
    status: str = NEW
    created_ms: int = 0
    updated_ms: int = 0
    quote_budget: Decimal | None = None  # market buy by quote amount
    locked: Decimal = Decimal(0)  # funds held for this order, in the asset it spends
    trade_ids: list[int] = field(default_factory=list)

    @property
    def remaining(self) -> int:
        return self.amount - self.filled

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATES


class _Level:
    __slots__ = ("orders", "total")

    def __init__(self) -> None:
        self.orders: deque[SimOrder] = deque()
        self.total = 0


class _Side:
    """One side of the book: levels by price, and the prices kept sorted ascending."""

    __slots__ = ("is_bid", "levels", "prices")

    def __init__(self, is_bid: bool) -> None:
        self.is_bid = is_bid
        self.levels: dict[int, _Level] = {}
        self.prices: list[int] = []

    def best(self) -> int | None:
        if not self.prices:
            return None
        return self.prices[-1] if self.is_bid else self.prices[0]

    def best_first(self) -> Iterator[int]:
        return reversed(self.prices) if self.is_bid else iter(self.prices)

    def level(self, price: int) -> _Level:
        level = self.levels.get(price)
        if level is None:
            level = self.levels[price] = _Level()
            insort(self.prices, price)
        return level

    def drop_if_empty(self, price: int) -> None:
        level = self.levels.get(price)
        if level is not None and not level.orders:
            del self.levels[price]
            del self.prices[bisect_left(self.prices, price)]


@dataclass(slots=True, frozen=True)
class Match:
    """One execution: ``maker`` rested in the book, ``taker`` arrived; ``lots`` at ``price``."""

    maker: SimOrder
    taker: SimOrder
    price: int
    lots: int


class MatchingBook:
    """The order book of one symbol on one venue."""

    def __init__(self, symbol: str, lot_size: Decimal, tick_size: Decimal) -> None:
        self.symbol = symbol
        self.lot_size = lot_size
        self.tick_size = tick_size
        self.bids = _Side(is_bid=True)
        self.asks = _Side(is_bid=False)
        self._changed_bids: set[int] = set()
        self._changed_asks: set[int] = set()

    def side(self, side: str) -> _Side:
        return self.bids if side == BUY else self.asks

    def opposite(self, side: str) -> _Side:
        return self.asks if side == BUY else self.bids

    def _mark(self, book_side: _Side, price: int) -> None:
        (self._changed_bids if book_side.is_bid else self._changed_asks).add(price)

    # ----- resting orders -------------------------------------------------------------

    def rest(self, order: SimOrder) -> None:
        """Queue ``order`` at its price, behind every order already there."""
        assert order.price is not None
        book_side = self.side(order.side)
        level = book_side.level(order.price)
        level.orders.append(order)
        level.total += order.remaining
        self._mark(book_side, order.price)

    def remove(self, order: SimOrder) -> None:
        """Take a resting order out of the book (cancel, expiry, maker withdrawal)."""
        assert order.price is not None
        book_side = self.side(order.side)
        level = book_side.levels.get(order.price)
        if level is None:
            return
        try:
            level.orders.remove(order)
        except ValueError:
            return
        level.total -= order.remaining
        book_side.drop_if_empty(order.price)
        self._mark(book_side, order.price)

    def resize(self, order: SimOrder, new_remaining: int) -> None:
        """Change a resting maker order's size; growing it sends it to the back of the queue."""
        assert order.price is not None
        assert new_remaining > 0
        book_side = self.side(order.side)
        level = book_side.levels[order.price]
        delta = new_remaining - order.remaining
        if delta == 0:
            return
        order.amount += delta
        level.total += delta
        if delta > 0 and level.orders[-1] is not order:
            level.orders.remove(order)
            level.orders.append(order)
        self._mark(book_side, order.price)

    # ----- matching -------------------------------------------------------------------

    def available(self, side: str, limit: int | None) -> int:
        """Lots a taker on ``side`` could get at ``limit`` or better."""
        total = 0
        book_side = self.opposite(side)
        for price in book_side.best_first():
            if limit is not None and (price > limit if side == BUY else price < limit):
                break
            total += book_side.levels[price].total
        return total

    def cost_to_take(self, side: str, lots: int) -> tuple[int, int]:
        """(lots available up to ``lots``, sum of price*lots in tick·lot units) for a taker."""
        remaining = lots
        cost = 0
        book_side = self.opposite(side)
        for price in book_side.best_first():
            if remaining <= 0:
                break
            take = min(remaining, book_side.levels[price].total)
            cost += take * price
            remaining -= take
        return lots - remaining, cost

    def match(self, taker: SimOrder, limit: int | None, max_lots: int) -> list[Match]:
        """Execute ``taker`` against the opposite side, best price first, FIFO per level.

        ``limit`` bounds the price (None for market orders); at most ``max_lots`` trade.
        Filled resting orders leave the book; quantities on both orders are updated.
        """
        matches: list[Match] = []
        book_side = self.opposite(taker.side)
        buying = taker.side == BUY
        remaining = max_lots
        while remaining > 0:
            price = book_side.best()
            if price is None or (
                limit is not None and (price > limit if buying else price < limit)
            ):
                break
            level = book_side.levels[price]
            while remaining > 0 and level.orders:
                maker = level.orders[0]
                lots = min(remaining, maker.remaining)
                maker.filled += lots
                taker.filled += lots
                level.total -= lots
                remaining -= lots
                matches.append(Match(maker, taker, price, lots))
                if maker.remaining == 0:
                    level.orders.popleft()
            book_side.drop_if_empty(price)
            self._mark(book_side, price)
        return matches

    # ----- views ----------------------------------------------------------------------

    def depth(self, side: str, limit: int | None = None) -> list[tuple[int, int]]:
        """``(price, total lots)`` levels of one side, best first."""
        book_side = self.side(side)
        out = []
        for price in book_side.best_first():
            out.append((price, book_side.levels[price].total))
            if limit is not None and len(out) >= limit:
                break
        return out

    def take_changes(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """Levels changed since the last call, as ``(price, new total)``; 0 means gone."""
        bids = [
            (p, self._level_total(self.bids, p)) for p in sorted(self._changed_bids, reverse=True)
        ]
        asks = [(p, self._level_total(self.asks, p)) for p in sorted(self._changed_asks)]
        self._changed_bids.clear()
        self._changed_asks.clear()
        return bids, asks

    @staticmethod
    def _level_total(book_side: _Side, price: int) -> int:
        level = book_side.levels.get(price)
        return level.total if level is not None else 0

    def has_changes(self) -> bool:
        return bool(self._changed_bids or self._changed_asks)
