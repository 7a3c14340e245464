"""The venue contract: what the engine may ask of one account on one exchange.

Deliberately missing: any way to withdraw or transfer funds (layer two of the
no-withdraw rule; tests assert that no method here or in an implementation has such a
name). Everything speaks arbot's own models, never ccxt dicts.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Iterable

from arbot.model import Balance, Fill, Market, Order, OrderBook


class Venue(ABC):
    """One trading account on one exchange."""

    name: str
    poll_interval_s: float | None = None
    """``None``: books are streamed (:meth:`watch_order_book`); else the feed polls
    :meth:`fetch_order_book` this often (venues without websocket books)."""
    reads_at_once: bool = False
    """``True``: reads of the account (:meth:`fetch_order`, :meth:`fetch_order_fills`)
    answer from memory without waiting for anything, so callers need no timeout around
    them (paper and backtest venues)."""
    orders_at_once: bool = False
    """``True``: :meth:`create_order` answers within the call (no network, no latency:
    paper venues, a backtest venue with zero order latency), so the executor sends it
    without a request task and a timeout."""

    @abstractmethod
    async def load_markets(self) -> dict[str, Market]:
        """Markets of the configured symbols, with grid, limits and this account's fees."""

    @abstractmethod
    async def fetch_balances(self) -> dict[str, Balance]:
        """Free and locked amount per asset."""

    @abstractmethod
    async def fetch_order_book(self, symbol: str, limit: int = 20) -> OrderBook:
        """A REST snapshot of the book (streams come through the feeds)."""

    @abstractmethod
    async def watch_order_book(self, symbol: str, depth: int) -> OrderBook:
        """The next state of the streamed book (top ``depth`` levels).

        Raises :class:`~arbot.venues.errors.BookGap` when the stream lost a message (call
        again to resynchronise) and :class:`~arbot.venues.errors.VenueUnavailable` when
        the connection failed (call again after a backoff to reconnect).
        """

    @abstractmethod
    async def reset_streams(self) -> None:
        """Drop every stream connection so the next watch reconnects (a stalled feed)."""

    @abstractmethod
    async def create_order(self, order: Order) -> Order:
        """Send ``order`` (its client order id is kept) and return what the venue says.

        Implementations ask the permission guard first: no key proven trade-only, no order.
        """

    @abstractmethod
    async def cancel_order(self, order: Order) -> Order:
        """Cancel; never needs the guard (cancelling only ever reduces exposure)."""

    @abstractmethod
    async def fetch_order(self, order: Order) -> Order:
        """The venue's current view of ``order`` (by client order id)."""

    @abstractmethod
    async def fetch_order_fills(self, order: Order) -> list[Fill]:
        """Every execution of ``order`` so far (by exchange id, else client order id)."""

    @abstractmethod
    async def fetch_open_orders(self, symbol: str | None = None) -> list[Order]:
        """Open orders of this account."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections."""


async def cancel_all_open_orders(venues: Iterable[Venue]) -> list[Order]:
    """Cancel every open order on every venue (the guard's halt, an operator's stop)."""

    async def one(venue: Venue) -> list[Order]:
        return [await venue.cancel_order(order) for order in await venue.fetch_open_orders()]

    results = await asyncio.gather(*(one(venue) for venue in venues))
    return [order for orders in results for order in orders]
