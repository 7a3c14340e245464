"""``PaperVenue``: live market data, a simulated account.

Books and markets come from an optional read-only venue (``market_data``, typically a
:class:`~arbot.venues.ccxt_venue.CcxtVenue` built without credentials and without a
permission guard, so it cannot place an order even by mistake); orders never leave the
process. They are matched at once against the current book by
:func:`~arbot.venues.fills.fill_order` (taker fills, exact Decimal, lot grid, taker fee
in the asset received by default), so paper trading exercises the same executor as live.

Account rules, as a spot exchange applies them:

* Starting ``balances`` are free; fills move them by the execution's balance changes.
* An order is refused (:class:`~arbot.venues.errors.OrderRejected`) when its symbol is
  unknown, it breaks the market's grid or limits, there is no current book, its client
  order id was used before on this venue (paper keeps every id, where exchanges only
  refuse ids of open orders), or the free balance cannot cover it: a sell needs
  ``amount`` base; a limit buy needs ``amount x price`` quote (plus the taker fee when
  fees are charged in quote); a market buy needs the cost of walking the book.
* A GTC limit's unfilled remainder rests ``open`` with its funds locked (``used``) until
  :meth:`cancel_order`; resting orders never fill later (no queue model in paper mode).
  IOC/FOK/market remainders are ``expired`` at once.
* Fetching or cancelling an unknown order, or cancelling one that is no longer open,
  raises :class:`~arbot.venues.errors.OrderNotFound`, as ccxt reports Binance's
  "Unknown order sent." and OKX's "order has been filled, canceled or does not exist".

There is no permission guard on this path: there is no key and nothing to protect. Like
every venue, it has no way to withdraw or transfer funds.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import replace
from decimal import Decimal, localcontext
from typing import TYPE_CHECKING

from arbot.model import (
    ZERO,
    Balance,
    Fill,
    Level,
    Market,
    Order,
    OrderBook,
    OrderStatus,
    OrderType,
    Side,
    to_decimal,
)
from arbot.venues.base import Venue
from arbot.venues.errors import OrderNotFound, OrderRejected, VenueError
from arbot.venues.fills import EXACT, Execution, FeeAsset, fill_order, match_levels, order_problem

if TYPE_CHECKING:
    from arbot.config import VenueConfig

BookSource = Callable[[str], OrderBook | None]
"""The current book of a symbol on this venue, or ``None`` before the first one (the
engine passes its ``MarketState`` lookup)."""

INSUFFICIENT = "Account has insufficient balance for requested action."


class PaperVenue(Venue):
    """A simulated account on ``name``; see the module docstring for its rules.

    Parameters:
        name: the venue name (books, markets, orders and fills carry it).
        markets: fixed markets by symbol; when omitted they come from ``market_data``.
        balances: starting free balance per asset.
        book_source: where fills find the current book; when omitted, the last book this
            venue returned from :meth:`watch_order_book` or :meth:`fetch_order_book`.
        market_data: a read-only venue for markets and books; it is closed with this one.
        clock: current time in ns since the epoch (orders and fills are stamped in ms).
        fee_asset: which asset taker fees are charged in (:class:`FeeAsset`).
        id_prefix: prefix of exchange order ids and trade ids; defaults to one derived
            from the clock at construction, so ids stay unique across runs in one store.
    """

    reads_at_once = True  # the account lives in memory
    orders_at_once = True  # and fills on the book it has

    def __init__(
        self,
        name: str,
        *,
        markets: Mapping[str, Market] | None = None,
        balances: Mapping[str, Decimal] | None = None,
        book_source: BookSource | None = None,
        market_data: Venue | None = None,
        clock: Callable[[], int] = time.time_ns,
        fee_asset: FeeAsset = FeeAsset.RECEIVED,
        id_prefix: str | None = None,
    ) -> None:
        self.name = name
        self.market_data = market_data
        self.book_source = book_source
        self.clock = clock
        self.fee_asset = fee_asset
        self.poll_interval_s = market_data.poll_interval_s if market_data else None
        self._fixed_markets = markets is not None
        self.markets: dict[str, Market] = self._own(markets or {})
        self._free: dict[str, Decimal] = dict(balances or {})
        self._used: dict[str, Decimal] = {}
        self._orders: dict[str, Order] = {}
        self._fills: dict[str, list[Fill]] = {}
        self._locks: dict[str, tuple[str, Decimal]] = {}
        self._books: dict[str, OrderBook] = {}
        # symbol -> ((received_ns, sequence) of a book state, {(taker side, price): taken})
        self._taken: dict[
            str, tuple[tuple[int, int | None], dict[tuple[Side, float], Decimal]]
        ] = {}
        prefix = f"paper-{clock() // 1_000_000}-" if id_prefix is None else id_prefix
        self._order_ids: Iterator[str] = (f"{prefix}{n}" for n in itertools.count(1))
        self._trade_ids: Iterator[str] = (f"{prefix}t{n}" for n in itertools.count(1))

    @classmethod
    def from_config(
        cls,
        name: str,
        config: VenueConfig,
        *,
        book_source: BookSource | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> PaperVenue:
        """Paper trading for ``[venues.NAME]``: its markets and books through a ccxt
        venue with no credentials and no guard, its ``balances`` as the starting account
        (its ``taker_fee``/``maker_fee`` overrides apply through the loaded markets)."""
        from arbot.venues.ccxt_venue import CcxtVenue

        reader = CcxtVenue(name, config.model_copy(update={"credentials": None}), None)
        return cls(
            name,
            balances=config.balances,
            book_source=book_source,
            market_data=reader,
            clock=clock,
        )

    # ----- market data ----------------------------------------------------------------

    async def load_markets(self) -> dict[str, Market]:
        if self.market_data is not None and not self._fixed_markets:
            self.markets = self._own(await self.market_data.load_markets())
        return dict(self.markets)

    async def fetch_order_book(self, symbol: str, limit: int = 20) -> OrderBook:
        if self.market_data is not None:
            return self._seen(await self.market_data.fetch_order_book(symbol, limit))
        book = self._book(symbol)
        if book is None:
            raise VenueError(self.name, f"no book for {symbol} yet")
        return OrderBook(
            self.name,
            symbol,
            book.bids[:limit],
            book.asks[:limit],
            book.timestamp_ms,
            book.received_ns,
            book.sequence,
        )

    async def watch_order_book(self, symbol: str, depth: int) -> OrderBook:
        if self.market_data is None:
            raise VenueError(self.name, "paper venue has no market data source to stream from")
        return self._seen(await self.market_data.watch_order_book(symbol, depth))

    async def reset_streams(self) -> None:
        if self.market_data is not None:
            await self.market_data.reset_streams()

    async def close(self) -> None:
        if self.market_data is not None:
            await self.market_data.close()

    # ----- the simulated account ------------------------------------------------------

    async def fetch_balances(self) -> dict[str, Balance]:
        assets = dict.fromkeys([*self._free, *self._used])
        return {
            asset: Balance(
                self.name, asset, self._free.get(asset, ZERO), self._used.get(asset, ZERO)
            )
            for asset in assets
        }

    async def create_order(self, order: Order) -> Order:
        return self._create(order)

    def _create(self, order: Order) -> Order:
        """:meth:`create_order`'s work, synchronous (the backtest runs it at arrival time)."""
        market = self.markets.get(order.symbol)
        if market is None:
            known = ", ".join(sorted(self.markets)) or "none loaded; call load_markets first"
            raise OrderRejected(self.name, f"unknown symbol {order.symbol} (markets: {known})")
        client_id = order.client_order_id or next(self._order_ids)
        if client_id in self._orders:
            raise OrderRejected(self.name, f"duplicate client order id {client_id!r}")
        book = self._fillable_book(order.symbol)
        if book is None:
            raise OrderRejected(self.name, f"no current {order.symbol} book: paper fills need one")
        problem = order_problem(order, book, market)
        if problem is not None:
            raise OrderRejected(self.name, f"{order.symbol}: {problem}")
        now = self.clock() // 1_000_000
        order = replace(
            order,
            client_order_id=client_id,
            venue=self.name,
            status=OrderStatus.PENDING,
            filled=ZERO,
            average_price=None,
            exchange_order_id=next(self._order_ids),
            created_ms=now,
            updated_ms=now,
        )
        asset, need = self._spend(order, book, market)
        free = self._free.get(asset, ZERO)
        if need > free:
            raise OrderRejected(
                self.name,
                f"insufficient balance: {order.side} {order.amount} {order.symbol} needs "
                f"{need} {asset}, {free} free ({INSUFFICIENT})",
            )
        execution = fill_order(
            order,
            book,
            market,
            trade_ids=self._trade_ids,
            timestamp_ms=now,
            fee_asset=self.fee_asset,
        )
        self._settle(execution, market)
        self._remember_taken(order.symbol, execution.fills)
        return execution.order

    async def cancel_order(self, order: Order) -> Order:
        return self._cancel(order)

    def _cancel(self, order: Order) -> Order:
        """:meth:`cancel_order`'s work, synchronous (the backtest runs it at arrival time)."""
        current = self._find(order)
        if current.status is not OrderStatus.OPEN:
            raise OrderNotFound(
                self.name,
                f"order {current.client_order_id} is {current.status}, not open "
                "(Unknown order sent.)",
            )
        self._release(current.client_order_id)
        canceled = replace(
            current, status=OrderStatus.CANCELED, updated_ms=self.clock() // 1_000_000
        )
        self._orders[canceled.client_order_id] = canceled
        return canceled

    async def fetch_order(self, order: Order) -> Order:
        return self._find(order)

    async def fetch_order_fills(self, order: Order) -> list[Fill]:
        return list(self._fills[self._find(order).client_order_id])

    async def fetch_open_orders(self, symbol: str | None = None) -> list[Order]:
        return [
            order
            for order in self._orders.values()
            if order.status is OrderStatus.OPEN and (symbol is None or order.symbol == symbol)
        ]

    # ----- helpers --------------------------------------------------------------------

    def _own(self, markets: Mapping[str, Market]) -> dict[str, Market]:
        return {
            symbol: market if market.venue == self.name else replace(market, venue=self.name)
            for symbol, market in markets.items()
        }

    def _seen(self, book: OrderBook) -> OrderBook:
        book.venue = self.name
        self._books[book.symbol] = book
        return book

    def _book(self, symbol: str) -> OrderBook | None:
        if self.book_source is not None:
            return self.book_source(symbol)
        return self._books.get(symbol)

    def _fillable_book(self, symbol: str) -> OrderBook | None:
        """The book to fill against: the current one, less what this account already
        took from this very state of it (a paper fill cannot be repeated on the same
        liquidity; the next update from the exchange brings its own levels)."""
        book = self._book(symbol)
        if book is None:
            return None
        taken = self._taken.get(symbol)
        if taken is None or taken[0] != (book.received_ns, book.sequence):
            return book
        used = taken[1]
        return OrderBook(
            book.venue,
            symbol,
            _less(book.bids, used, Side.SELL),
            _less(book.asks, used, Side.BUY),
            book.timestamp_ms,
            book.received_ns,
            book.sequence,
        )

    def _remember_taken(self, symbol: str, fills: Iterable[Fill]) -> None:
        book = self._book(symbol)
        if book is None:
            return
        key = (book.received_ns, book.sequence)
        taken = self._taken.get(symbol)
        if taken is None or taken[0] != key:
            taken = self._taken[symbol] = (key, {})
        for fill in fills:
            level = (fill.side, float(fill.price))
            taken[1][level] = taken[1].get(level, ZERO) + fill.amount

    def _fee_factor(self, market: Market) -> Decimal:
        return 1 + market.taker_fee if self.fee_asset is FeeAsset.QUOTE else Decimal(1)

    def _spend(self, order: Order, book: OrderBook, market: Market) -> tuple[str, Decimal]:
        """The asset ``order`` spends and the most it can spend of it."""
        if order.side is Side.SELL:
            return market.base, order.amount
        with localcontext(EXACT):
            if order.type is OrderType.LIMIT and order.price is not None:
                cost = order.amount * order.price
            else:
                cost = sum(
                    (take.price * take.amount for take in match_levels(order, book, market)), ZERO
                )
            return market.quote, cost * self._fee_factor(market)

    def _settle(self, execution: Execution, market: Market) -> None:
        order = execution.order
        with localcontext(EXACT):
            for asset, change in execution.balance_changes.items():
                self._free[asset] = self._free.get(asset, ZERO) + change
            if order.status is OrderStatus.OPEN:
                if order.side is Side.SELL:
                    asset, lock = market.base, order.remaining
                else:
                    assert order.price is not None  # only limits rest
                    asset = market.quote
                    lock = order.remaining * order.price * self._fee_factor(market)
                self._free[asset] = self._free.get(asset, ZERO) - lock
                self._used[asset] = self._used.get(asset, ZERO) + lock
                self._locks[order.client_order_id] = (asset, lock)
        self._orders[order.client_order_id] = order
        self._fills[order.client_order_id] = list(execution.fills)

    def _release(self, client_id: str) -> None:
        asset, lock = self._locks.pop(client_id)
        with localcontext(EXACT):
            self._used[asset] -= lock
            self._free[asset] = self._free.get(asset, ZERO) + lock

    def _find(self, order: Order) -> Order:
        found = self._orders.get(order.client_order_id)
        if found is None and order.exchange_order_id is not None:
            found = next(
                (
                    o
                    for o in self._orders.values()
                    if o.exchange_order_id == order.exchange_order_id
                ),
                None,
            )
        if found is None:
            raise OrderNotFound(
                self.name, f"order {order.client_order_id or order.exchange_order_id} not found"
            )
        return found


def _less(levels: list[Level], used: dict[tuple[Side, float], Decimal], side: Side) -> list[Level]:
    """``levels`` minus what takers on ``side`` already took at each price (in Decimal,
    so 0.3 - 0.1 leaves 0.2, not 0.19999999999999998)."""
    out = []
    for price, amount in levels:
        taken = used.get((side, price))
        if taken is None:
            out.append((price, amount))
            continue
        left = to_decimal(amount) - taken
        if left > 0:
            out.append((price, float(left)))
    return out
