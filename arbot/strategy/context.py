"""What a strategy sees: :class:`StrategyContext`, a read-only view of :class:`MarketState`.

The engine (daemon, backtest, or a test) owns one :class:`MarketState` and applies
every book update, balance change and market load to it; strategies get the
:class:`StrategyContext` over it and can only read. Both are plain slotted classes
over dicts: the context is consulted several times per update on the hot path.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from types import MappingProxyType

from arbot.feeds.book_feed import BookUpdate
from arbot.model import ZERO, Balance, Market, OrderBook

Clock = Callable[[], int]
"""Returns the current time in ns since the epoch: wall clock live, replay clock in backtests."""


class MarketState:
    """The engine's current picture: latest book per (venue, symbol), markets, free balances."""

    __slots__ = ("balances", "books", "clock", "markets", "max_book_age_ms", "venues_by_symbol")

    def __init__(
        self,
        markets: Iterable[Market] = (),
        *,
        balances: Iterable[Balance] = (),
        clock: Clock = time.time_ns,
        max_book_age_ms: float = 1000.0,
    ) -> None:
        self.books: dict[tuple[str, str], OrderBook] = {}
        self.markets: dict[tuple[str, str], Market] = {}
        self.venues_by_symbol: dict[str, tuple[str, ...]] = {}
        self.balances: dict[tuple[str, str], Decimal] = {}
        self.clock = clock
        self.max_book_age_ms = max_book_age_ms
        for market in markets:
            self.add_market(market)
        for balance in balances:
            self.set_balance(balance.venue, balance.asset, balance.free)

    def add_market(self, market: Market) -> None:
        self.markets[(market.venue, market.symbol)] = market
        venues = self.venues_by_symbol.get(market.symbol, ())
        if market.venue not in venues:
            self.venues_by_symbol[market.symbol] = (*venues, market.venue)

    def set_balance(self, venue: str, asset: str, free: Decimal) -> None:
        self.balances[(venue, asset)] = free

    def apply(self, update: BookUpdate) -> OrderBook:
        """Make ``update`` the current book of its (venue, symbol); levels are not copied."""
        key = (update.venue, update.symbol)
        book = self.books.get(key)
        if book is None:
            book = self.books[key] = OrderBook(
                update.venue,
                update.symbol,
                update.bids,
                update.asks,
                update.exchange_ms,
                update.received_ns,
                update.sequence,
            )
            return book
        book.bids = update.bids
        book.asks = update.asks
        book.timestamp_ms = update.exchange_ms
        book.received_ns = update.received_ns
        book.sequence = update.sequence
        return book

    def context(self) -> StrategyContext:
        return StrategyContext(self)


class StrategyContext:
    """Read-only: books with their age, markets (precision, limits, fees), balances, clock.

    Books are the live objects the engine updates; a strategy must not mutate them or
    keep them across calls expecting them to stay put.
    """

    __slots__ = ("_state",)

    def __init__(self, state: MarketState) -> None:
        self._state = state

    @property
    def now_ns(self) -> int:
        return self._state.clock()

    @property
    def max_book_age_ms(self) -> float:
        return self._state.max_book_age_ms

    def book(self, venue: str, symbol: str) -> OrderBook | None:
        return self._state.books.get((venue, symbol))

    @property
    def books(self) -> Mapping[tuple[str, str], OrderBook]:
        return MappingProxyType(self._state.books)

    def book_age_ms(self, venue: str, symbol: str, now_ns: int | None = None) -> float | None:
        """Milliseconds since the book was received; ``None`` before the first update."""
        book = self._state.books.get((venue, symbol))
        if book is None:
            return None
        return ((self._state.clock() if now_ns is None else now_ns) - book.received_ns) / 1e6

    def is_stale(self, venue: str, symbol: str, now_ns: int | None = None) -> bool:
        """True when there is no book yet or it is older than ``risk.max_book_age_ms``."""
        age = self.book_age_ms(venue, symbol, now_ns)
        return age is None or age > self._state.max_book_age_ms

    def market(self, venue: str, symbol: str) -> Market | None:
        return self._state.markets.get((venue, symbol))

    @property
    def markets(self) -> Mapping[tuple[str, str], Market]:
        return MappingProxyType(self._state.markets)

    def venues_for(self, symbol: str) -> tuple[str, ...]:
        """The venues that list ``symbol``, in the order they were configured."""
        return self._state.venues_by_symbol.get(symbol, ())

    def taker_fee(self, venue: str, symbol: str) -> Decimal:
        """The account's taker fee on that market as a fraction (``0.001`` = 10 bps)."""
        market = self._state.markets.get((venue, symbol))
        return market.taker_fee if market is not None else ZERO

    def balance(self, venue: str, asset: str) -> Decimal:
        """Free (not locked in orders) amount of ``asset`` on ``venue``; zero if unknown."""
        return self._state.balances.get((venue, asset), ZERO)
