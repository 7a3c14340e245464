"""One simulated exchange account world: markets, books, accounts, keys, orders, trades.

Protocol modules (Binance, OKX) translate HTTP and websocket traffic into calls on a
:class:`SimVenue` and its answers back into the exchange's wire format. Everything
here is synchronous and runs on the server's event loop, so each call sees and leaves
a consistent state (a depth snapshot and the diffs around it never disagree).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation

from arbot.sim.book import (
    BUY,
    CANCELED,
    EXPIRED,
    FILLED,
    NEW,
    PARTIALLY_FILLED,
    REJECTED,
    SELL,
    Match,
    MatchingBook,
    SimOrder,
)
from arbot.sim.faults import Faults

FEE_QUANTUM = Decimal("1E-8")
TEXT_CACHE_SIZE = 100_000


class SimReject(Exception):
    """An order or request the venue refuses; ``kind`` is protocol-neutral."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail


# Reject kinds; each protocol maps them to its own codes and messages.
UNKNOWN_SYMBOL = "unknown_symbol"
BAD_AMOUNT = "bad_amount"
BAD_PRICE = "bad_price"
MIN_AMOUNT = "min_amount"
MAX_AMOUNT = "max_amount"
MIN_NOTIONAL = "min_notional"
INSUFFICIENT_BALANCE = "insufficient_balance"
DUPLICATE_CLIENT_ID = "duplicate_client_id"
ORDER_NOT_FOUND = "order_not_found"
REJECTED_BY_FAULT = "rejected_by_fault"
NO_LIQUIDITY = "no_liquidity"
WOULD_TAKE = "would_take"
NOT_PERMITTED = "not_permitted"


@dataclass(frozen=True, slots=True)
class SimMarket:
    """A symbol's grid and limits. ``tick`` and ``lot`` are increments."""

    symbol: str
    base: str
    quote: str
    tick: Decimal
    lot: Decimal
    min_amount: Decimal
    max_amount: Decimal
    min_notional: Decimal
    # ticks -> price text and lots -> amount text: every diff formats two texts per level
    _prices: dict[int, str] = field(default_factory=dict, init=False, repr=False, compare=False)
    _amounts: dict[int, str] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def exchange_id(self) -> str:
        """``BTCUSDT`` (Binance style); OKX uses :attr:`inst_id`."""
        return self.base + self.quote

    @property
    def inst_id(self) -> str:
        return f"{self.base}-{self.quote}"

    def ticks(self, price: Decimal) -> int | None:
        """Price as whole ticks, or ``None`` if it is off the grid."""
        units = price / self.tick
        return int(units) if units == units.to_integral_value() else None

    def lots(self, amount: Decimal) -> int | None:
        units = amount / self.lot
        return int(units) if units == units.to_integral_value() else None

    def price(self, ticks: int) -> Decimal:
        return self.tick * ticks

    def amount(self, lots: int) -> Decimal:
        return self.lot * lots

    def price_text(self, ticks: int) -> str:
        text = self._prices.get(ticks)
        if text is None:
            if len(self._prices) >= TEXT_CACHE_SIZE:
                self._prices.clear()
            text = self._prices[ticks] = format(self.tick * ticks, "f")
        return text

    def amount_text(self, lots: int) -> str:
        text = self._amounts.get(lots)
        if text is None:
            if len(self._amounts) >= TEXT_CACHE_SIZE:
                self._amounts.clear()
            text = self._amounts[lots] = format(self.lot * lots, "f")
        return text


@dataclass(frozen=True, slots=True)
class SimKey:
    """An API key the venue accepts. Permissions: read, trade, withdraw, transfer."""

    venue: str
    name: str
    api_key: str
    secret: str
    passphrase: str
    permissions: frozenset[str]
    account: str
    ip_restricted: bool = False
    created_ms: int = 0


@dataclass(slots=True)
class SimTrade:
    """One side of an execution, as the account that traded sees it."""

    trade_id: int
    order_id: int
    client_order_id: str
    account: str
    symbol: str
    side: str
    price: Decimal
    amount: Decimal
    quote_amount: Decimal
    fee: Decimal
    fee_asset: str
    is_maker: bool
    time_ms: int


@dataclass(slots=True)
class Account:
    name: str
    free: dict[str, Decimal] = field(default_factory=dict)
    locked: dict[str, Decimal] = field(default_factory=dict)

    def credit(self, asset: str, amount: Decimal) -> None:
        self.free[asset] = self.free.get(asset, Decimal(0)) + amount

    def lock(self, asset: str, amount: Decimal) -> None:
        free = self.free.get(asset, Decimal(0))
        if free < amount:
            raise SimReject(INSUFFICIENT_BALANCE, f"{asset} free {free} < {amount}")
        self.free[asset] = free - amount
        self.locked[asset] = self.locked.get(asset, Decimal(0)) + amount

    def release(self, asset: str, amount: Decimal) -> None:
        if amount:
            self.locked[asset] -= amount
            self.credit(asset, amount)

    def spend_locked(self, asset: str, amount: Decimal) -> None:
        self.locked[asset] -= amount


@dataclass(frozen=True, slots=True)
class BookDiff:
    """Levels that changed in one step; an amount of ``"0"`` removes the level."""

    symbol: str
    first_id: int
    last_id: int
    prev_id: int
    time_ms: int
    bids: list[tuple[str, str]]
    asks: list[tuple[str, str]]


@dataclass(slots=True)
class WithdrawalAttempt:
    """Any withdraw or transfer request the venue received, allowed or not."""

    venue: str
    kind: str  # withdraw | transfer
    api_key: str
    asset: str
    amount: str
    destination: str
    permitted: bool
    time_ms: int


@dataclass(frozen=True, slots=True)
class RejectedOrder:
    """An order the venue refused before it got an id."""

    account: str
    symbol: str
    side: str
    type: str
    time_in_force: str
    amount: str
    price: str | None
    client_order_id: str
    reason: str
    time_ms: int


BookListener = Callable[[BookDiff], None]
OrderListener = Callable[[SimOrder, "SimTrade | None"], None]


class SimVenue:
    """The state of one simulated exchange."""

    def __init__(
        self,
        name: str,
        protocol: str,
        markets: list[SimMarket],
        maker_fee: Decimal,
        taker_fee: Decimal,
    ) -> None:
        self.name = name
        self.protocol = protocol
        self.markets = {m.symbol: m for m in markets}
        self.by_exchange_id = {m.exchange_id: m for m in markets} | {m.inst_id: m for m in markets}
        self.maker_fee = maker_fee
        self.taker_fee = taker_fee
        self.books = {m.symbol: MatchingBook(m.symbol, m.lot, m.tick) for m in markets}
        self.accounts: dict[str, Account] = {}
        self.keys: dict[str, SimKey] = {}
        self.orders: dict[int, SimOrder] = {}
        self.trades: list[SimTrade] = []
        self.withdrawals: list[WithdrawalAttempt] = []
        self.rejections: list[RejectedOrder] = []
        self.arrivals_ns: dict[str, int] = {}
        """Client order id -> wall clock (``time.time_ns()``) when the order reached
        :meth:`place_order` (after the protocol parsed and authenticated it); the last
        arrival wins. For latency benchmarks."""
        self.faults = Faults()
        self.update_ids = dict.fromkeys(self.markets, 0)
        self._listeners: dict[str, list[BookListener]] = {s: [] for s in self.markets}
        self._maker_orders: dict[str, dict[tuple[str, int], SimOrder]] = {
            s: {} for s in self.markets
        }
        self._next_order_id = 1
        self._next_trade_id = 1
        self._faults_event: asyncio.Event | None = None
        self.order_listeners: list[OrderListener] = []

    # ----- faults ---------------------------------------------------------------------

    async def faults_changed(self) -> None:
        """Wait until the next :meth:`notify_faults` (a stalled sender waits here)."""
        if self._faults_event is None:
            self._faults_event = asyncio.Event()
        await self._faults_event.wait()

    def notify_faults(self) -> None:
        """Wake everything waiting on fault changes; call after changing :attr:`faults`."""
        event, self._faults_event = self._faults_event, None
        if event is not None:
            event.set()

    # ----- clock, accounts, keys ------------------------------------------------------

    def now_ms(self) -> int:
        """The venue's clock, including any injected skew."""
        return int(time.time() * 1000) + self.faults.clock_skew_ms

    def add_account(self, name: str, balances: dict[str, Decimal]) -> Account:
        account = self.accounts.setdefault(name, Account(name))
        for asset, amount in balances.items():
            account.free[asset] = amount
            account.locked.setdefault(asset, Decimal(0))
        return account

    def add_key(self, key: SimKey) -> None:
        self.keys[key.api_key] = key
        self.accounts.setdefault(key.account, Account(key.account))

    def set_balance(self, account: str, asset: str, free: Decimal) -> None:
        self.accounts.setdefault(account, Account(account)).free[asset] = free

    # ----- market data ----------------------------------------------------------------

    def subscribe(self, symbol: str, listener: BookListener) -> None:
        self._listeners[symbol].append(listener)

    def unsubscribe(self, symbol: str, listener: BookListener) -> None:
        listeners = self._listeners.get(symbol, [])
        if listener in listeners:
            listeners.remove(listener)

    def snapshot(
        self, symbol: str, limit: int | None
    ) -> tuple[int, list[tuple[str, str]], list[tuple[str, str]]]:
        """``(last update id, bids, asks)`` with prices and amounts as exchange text."""
        market = self.markets[symbol]
        book = self.books[symbol]
        bids = [(market.price_text(p), market.amount_text(q)) for p, q in book.depth(BUY, limit)]
        asks = [(market.price_text(p), market.amount_text(q)) for p, q in book.depth(SELL, limit)]
        return self.update_ids[symbol], bids, asks

    def publish(self, symbol: str) -> BookDiff | None:
        """Turn the book's pending changes into one diff and hand it to every listener."""
        book = self.books[symbol]
        if not book.has_changes():
            return None
        market = self.markets[symbol]
        bid_changes, ask_changes = book.take_changes()
        bids = [(market.price_text(p), market.amount_text(q) if q else "0") for p, q in bid_changes]
        asks = [(market.price_text(p), market.amount_text(q) if q else "0") for p, q in ask_changes]
        previous = self.update_ids[symbol]
        last = previous + max(1, len(bids) + len(asks))
        self.update_ids[symbol] = last
        diff = BookDiff(symbol, previous + 1, last, previous, self.now_ms(), bids, asks)
        if self.faults.take_sequence_skip(symbol):
            return diff  # lost on the way: subscribers see the next diff's gap
        for listener in tuple(self._listeners[symbol]):
            listener(diff)
        return diff

    # ----- the simulated makers -------------------------------------------------------

    def set_maker_ladder(self, symbol: str, bids: dict[int, int], asks: dict[int, int]) -> None:
        """Make the makers' resting orders equal to ``bids``/``asks`` (ticks → lots).

        Stale maker orders go first, so new quotes can only cross *user* orders, which
        then fill as makers at their own price.
        """
        book = self.books[symbol]
        makers = self._maker_orders[symbol]
        for (side, price), order in list(makers.items()):
            target = (bids if side == BUY else asks).get(price, 0)
            if order.remaining == 0 or target == 0:
                if order.remaining:
                    book.remove(order)
                del makers[(side, price)]
            elif target != order.remaining:
                book.resize(order, target)
        now = self.now_ms()
        for side, ladder in ((BUY, bids), (SELL, asks)):
            for price, lots in ladder.items():
                if lots > 0 and (side, price) not in makers:
                    self._add_maker(symbol, side, price, lots, now)
        self.publish(symbol)

    def _add_maker(self, symbol: str, side: str, price: int, lots: int, now: int) -> None:
        """A new maker order; where it crosses resting user orders it trades with them first."""
        book = self.books[symbol]
        order = SimOrder(0, None, symbol, side, "limit", "GTC", price, lots, created_ms=now)
        matches = book.match(order, price, lots)
        if matches:
            self._settle(matches, now)
        if order.remaining:
            book.rest(order)
            self._maker_orders[symbol][(side, price)] = order

    def apply_maker_levels(
        self, symbol: str, bids: list[tuple[int, int]], asks: list[tuple[int, int]]
    ) -> None:
        """Set the makers' size at given prices (ticks → lots; 0 removes), without publishing.

        Replay uses this to reproduce a recorded book event by event; call
        :meth:`publish` after each recorded event. Shrinking levels go first, so an event
        that moves both sides never crosses the makers' own quotes; a level that would
        cross resting *user* orders trades against them, as in :meth:`set_maker_ladder`.
        """
        book = self.books[symbol]
        makers = self._maker_orders[symbol]
        now = self.now_ms()
        growing: list[tuple[str, int, int]] = []
        for side, levels in ((BUY, bids), (SELL, asks)):
            for price, lots in levels:
                order = makers.get((side, price))
                if order is not None and order.remaining == 0:
                    del makers[(side, price)]
                    order = None
                if order is None:
                    if lots > 0:
                        growing.append((side, price, lots))
                elif lots <= 0:
                    book.remove(order)
                    del makers[(side, price)]
                elif lots < order.remaining:
                    book.resize(order, lots)
                elif lots > order.remaining:
                    growing.append((side, price, lots))
        for side, price, lots in growing:
            order = makers.get((side, price))
            if order is not None:
                book.resize(order, lots)
            else:
                self._add_maker(symbol, side, price, lots, now)

    # ----- orders ---------------------------------------------------------------------

    def place_order(
        self,
        account_name: str,
        symbol: str,
        side: str,
        order_type: str,
        amount: Decimal | None,
        price: Decimal | None,
        time_in_force: str = "GTC",
        client_order_id: str = "",
        quote_amount: Decimal | None = None,
        post_only: bool = False,
    ) -> SimOrder:
        """Validate, lock funds, match and rest an order; raises :class:`SimReject`.

        Refused orders get no id (as on real exchanges) but are kept in
        :attr:`rejections`, so tests can compare a bot's journal with every order sent.
        """
        if client_order_id:
            self.arrivals_ns[client_order_id] = time.time_ns()
        try:
            return self._place_order(
                account_name,
                symbol,
                side,
                order_type,
                amount,
                price,
                time_in_force,
                client_order_id,
                quote_amount,
                post_only,
            )
        except SimReject as exc:
            self.rejections.append(
                RejectedOrder(
                    account_name,
                    symbol,
                    side,
                    order_type,
                    time_in_force,
                    str(amount),
                    None if price is None else str(price),
                    client_order_id,
                    exc.kind,
                    self.now_ms(),
                )
            )
            raise

    def _place_order(
        self,
        account_name: str,
        symbol: str,
        side: str,
        order_type: str,
        amount: Decimal | None,
        price: Decimal | None,
        time_in_force: str,
        client_order_id: str,
        quote_amount: Decimal | None,
        post_only: bool,
    ) -> SimOrder:
        market = self.markets.get(symbol)
        if market is None:
            raise SimReject(UNKNOWN_SYMBOL, symbol)
        account = self.accounts[account_name]
        if client_order_id and any(
            o.client_order_id == client_order_id and o.account == account_name and o.is_open
            for o in self.orders.values()
        ):
            raise SimReject(DUPLICATE_CLIENT_ID, client_order_id)
        if self.faults.take_order_rejection():
            raise SimReject(REJECTED_BY_FAULT, "order rejected by the venue")
        book = self.books[symbol]
        price_ticks = self._validate_price(market, order_type, price)
        lots = self._validate_amount(market, book, side, order_type, amount, quote_amount)
        if post_only and price_ticks is not None and book.available(side, price_ticks):
            raise SimReject(WOULD_TAKE, "post-only order would take liquidity")
        if (
            price_ticks is not None
            and lots
            and market.amount(lots) * market.price(price_ticks) < market.min_notional
        ):
            raise SimReject(MIN_NOTIONAL, f"notional below {market.min_notional}")
        now = self.now_ms()
        order = SimOrder(
            order_id=self._next_order_id,
            account=account_name,
            symbol=symbol,
            side=side,
            type=order_type,
            time_in_force=time_in_force if order_type == "limit" else "IOC",
            price=price_ticks,
            amount=lots,
            client_order_id=client_order_id,
            created_ms=now,
            updated_ms=now,
            quote_budget=quote_amount if side == BUY else None,
        )
        self._lock_for(order, market, account, book)
        self._next_order_id += 1
        self.orders[order.order_id] = order
        max_lots = self.faults.cap_fill(lots)
        if order.time_in_force == "FOK" and (
            max_lots < lots or book.available(side, price_ticks) < lots
        ):
            max_lots = 0
        matches = book.match(order, price_ticks, max_lots) if max_lots else []
        self._settle(matches, now)
        if order.remaining == 0:
            order.status = FILLED
            self._release(order, market, account)
        elif order.time_in_force == "GTC":
            order.status = PARTIALLY_FILLED if order.filled else NEW
            book.rest(order)
        else:
            order.status = EXPIRED
            self._release(order, market, account)
        self._emit(order, None)
        self.publish(symbol)
        return order

    def _emit(self, order: SimOrder, trade: SimTrade | None) -> None:
        for listener in self.order_listeners:
            listener(order, trade)

    def _validate_price(
        self, market: SimMarket, order_type: str, price: Decimal | None
    ) -> int | None:
        if order_type == "market":
            return None
        if price is None or price <= 0:
            raise SimReject(BAD_PRICE, "limit orders need a positive price")
        ticks = market.ticks(price)
        if ticks is None:
            raise SimReject(BAD_PRICE, f"price {price} is not a multiple of tick {market.tick}")
        return ticks

    def _validate_amount(
        self,
        market: SimMarket,
        book: MatchingBook,
        side: str,
        order_type: str,
        amount: Decimal | None,
        quote_amount: Decimal | None,
    ) -> int:
        if quote_amount is not None and amount is None:
            if order_type != "market":
                raise SimReject(BAD_AMOUNT, "a quote amount is only accepted for market orders")
            if quote_amount < market.min_notional:
                raise SimReject(MIN_NOTIONAL, f"notional below {market.min_notional}")
            lots = self._lots_for_budget(market, book, side, quote_amount)
            if lots == 0:
                raise SimReject(NO_LIQUIDITY, "no liquidity on the other side")
            return lots
        if amount is None or amount <= 0:
            raise SimReject(BAD_AMOUNT, "amount must be positive")
        exact_lots = market.lots(amount)
        if exact_lots is None:
            raise SimReject(BAD_AMOUNT, f"amount {amount} is not a multiple of lot {market.lot}")
        lots = exact_lots
        if amount < market.min_amount:
            raise SimReject(MIN_AMOUNT, f"amount below {market.min_amount}")
        if amount > market.max_amount:
            raise SimReject(MAX_AMOUNT, f"amount above {market.max_amount}")
        if order_type == "market":
            _, cost = book.cost_to_take(side, lots)
            if cost == 0:
                raise SimReject(NO_LIQUIDITY, "no liquidity on the other side")
            if market.lot * market.tick * cost < market.min_notional:
                raise SimReject(MIN_NOTIONAL, f"notional below {market.min_notional}")
        return lots

    @staticmethod
    def _lots_for_budget(market: SimMarket, book: MatchingBook, side: str, budget: Decimal) -> int:
        """Lots a market order on ``side`` trades to spend (buy) or raise (sell) ``budget``."""
        lots = 0
        for price, size in book.depth(SELL if side == BUY else BUY):
            unit = market.price(price) * market.lot
            affordable = int((budget / unit).to_integral_value(ROUND_FLOOR))
            take = min(size, affordable)
            lots += take
            budget -= unit * take
            if take < size:
                break
        return lots

    def _lock_for(
        self, order: SimOrder, market: SimMarket, account: Account, book: MatchingBook
    ) -> None:
        if order.side == SELL:
            amount = market.amount(order.amount)
            account.lock(market.base, amount)
        elif order.quote_budget is not None:
            amount = order.quote_budget
            account.lock(market.quote, amount)
        elif order.price is not None:
            amount = market.amount(order.amount) * market.price(order.price)
            account.lock(market.quote, amount)
        else:
            _, cost = book.cost_to_take(BUY, order.amount)
            amount = market.lot * market.tick * cost
            account.lock(market.quote, amount)
        order.locked = amount

    def _release(self, order: SimOrder, market: SimMarket, account: Account) -> None:
        asset = market.base if order.side == SELL else market.quote
        account.release(asset, order.locked)
        order.locked = Decimal(0)

    def _settle(self, matches: list[Match], now: int) -> None:
        for match in matches:
            market = self.markets[match.taker.symbol]
            price = market.price(match.price)
            base = market.amount(match.lots)
            quote = price * base
            for order, is_maker in ((match.maker, True), (match.taker, False)):
                if order.account is None:
                    continue
                self._book_trade(order, market, price, base, quote, is_maker, now)

    def _book_trade(
        self,
        order: SimOrder,
        market: SimMarket,
        price: Decimal,
        base: Decimal,
        quote: Decimal,
        is_maker: bool,
        now: int,
    ) -> None:
        assert order.account is not None
        account = self.accounts[order.account]
        rate = self.maker_fee if is_maker else self.taker_fee
        if order.side == BUY:
            fee_asset = market.base
            fee = (base * rate).quantize(FEE_QUANTUM, ROUND_HALF_UP)
            account.spend_locked(market.quote, quote)
            order.locked -= quote
            account.credit(market.base, base - fee)
        else:
            fee_asset = market.quote
            fee = (quote * rate).quantize(FEE_QUANTUM, ROUND_HALF_UP)
            account.spend_locked(market.base, base)
            order.locked -= base
            account.credit(market.quote, quote - fee)
        order.quote_filled += quote
        order.updated_ms = now
        trade = SimTrade(
            trade_id=self._next_trade_id,
            order_id=order.order_id,
            client_order_id=order.client_order_id,
            account=order.account,
            symbol=order.symbol,
            side=order.side,
            price=price,
            amount=base,
            quote_amount=quote,
            fee=fee,
            fee_asset=fee_asset,
            is_maker=is_maker,
            time_ms=now,
        )
        self._next_trade_id += 1
        order.trade_ids.append(trade.trade_id)
        self.trades.append(trade)
        if order.remaining == 0:
            order.status = FILLED
            if is_maker:  # a taker's leftover funds are released when its matching ends
                self._release(order, market, account)
        else:
            order.status = PARTIALLY_FILLED
        self._emit(order, trade)

    def cancel_order(self, account_name: str, symbol: str, order: SimOrder) -> SimOrder:
        if not order.is_open:
            raise SimReject(ORDER_NOT_FOUND, "order is not open")
        market = self.markets[symbol]
        self.books[symbol].remove(order)
        order.status = CANCELED
        order.updated_ms = self.now_ms()
        self._release(order, market, self.accounts[account_name])
        self._emit(order, None)
        self.publish(symbol)
        return order

    def find_order(
        self, account_name: str, symbol: str, order_id: int | None = None, client_order_id: str = ""
    ) -> SimOrder:
        """The account's order by exchange id or client id (newest first for client ids)."""
        if order_id is not None:
            order = self.orders.get(order_id)
            if order is not None and order.account == account_name and order.symbol == symbol:
                return order
        elif client_order_id:
            for order in reversed(self.orders.values()):
                if (
                    order.client_order_id == client_order_id
                    and order.account == account_name
                    and order.symbol == symbol
                ):
                    return order
        raise SimReject(ORDER_NOT_FOUND, "order does not exist")

    def open_orders(self, account_name: str, symbol: str | None) -> list[SimOrder]:
        return [
            o
            for o in self.orders.values()
            if o.account == account_name and o.is_open and (symbol is None or o.symbol == symbol)
        ]

    def account_trades(self, account_name: str, symbol: str | None) -> list[SimTrade]:
        return [
            t
            for t in self.trades
            if t.account == account_name and (symbol is None or t.symbol == symbol)
        ]

    def move_funds(self, kind: str, key: SimKey, asset: str, amount: str, destination: str) -> None:
        """A withdraw or transfer request: always recorded, then refused or debited.

        Raises :class:`SimReject` ``not_permitted`` when the key lacks the ``kind``
        permission, ``bad_amount`` or ``insufficient_balance`` otherwise.
        """
        permitted = kind in key.permissions
        self.withdrawals.append(
            WithdrawalAttempt(
                self.name, kind, key.api_key, asset, amount, destination, permitted, self.now_ms()
            )
        )
        if not permitted:
            raise SimReject(NOT_PERMITTED, f"the key may not {kind}")
        try:
            value = Decimal(amount)
        except InvalidOperation:
            raise SimReject(BAD_AMOUNT, f"amount {amount!r} is not a number") from None
        account = self.accounts[key.account]
        if not value > 0 or account.free.get(asset, Decimal(0)) < value:
            raise SimReject(INSUFFICIENT_BALANCE, f"cannot {kind} {amount} {asset}")
        account.free[asset] -= value


__all__ = [
    "BUY",
    "CANCELED",
    "EXPIRED",
    "FILLED",
    "NEW",
    "PARTIALLY_FILLED",
    "REJECTED",
    "SELL",
    "Account",
    "BookDiff",
    "OrderListener",
    "RejectedOrder",
    "SimKey",
    "SimMarket",
    "SimReject",
    "SimTrade",
    "SimVenue",
    "WithdrawalAttempt",
]
