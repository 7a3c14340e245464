"""Value types shared by every layer: books, markets, legs, opportunities, orders, fills.

The same objects flow through the daemon, the backtest and strategy plugins, so a
strategy that works in one works in the others (NautilusTrader's "one domain model").

Numbers and rounding rules
--------------------------
* **Counted money is exact.** Amounts and prices that are sent to a venue (``Leg``,
  ``Order``), fills, fees, balances and PnL are :class:`~decimal.Decimal`.
* **Books are floats.** Order-book levels are ``(price, amount)`` tuples of Python
  floats, because they are updated thousands of times a second and only *compared and
  summed* on the hot path. ccxt delivers them as floats already, so no precision is
  lost by keeping them so. Book maths (:meth:`OrderBook.walk`) is therefore approximate
  to about 1e-15 relative, and is only ever used to *decide* and *size* a trade.
* **Crossing from float to Decimal** goes through :func:`to_decimal`, which uses the
  shortest ``repr`` of the float: ``0.1`` becomes ``Decimal("0.1")``, never
  ``Decimal("0.1000000000000000055511151231257827")``.
* **Snapping to a market's grid** (:class:`Market`) never loosens a promise:
  amounts round **down** to the lot step (never trade more than was sized or than
  the balance holds); limit prices round **against us**, i.e. a buy limit rounds
  **down** and a sell limit rounds **up** to the tick, so a limit that bounds
  slippage still bounds it after rounding. Fees are computed on the rounded values.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from enum import StrEnum
from typing import NamedTuple

ZERO = Decimal(0)

Level = tuple[float, float]
"""One book level: ``(price, amount)`` in the market's quote and base units."""


def to_decimal(value: float | int | str | Decimal) -> Decimal:
    """Convert a book float (or anything numeric) to Decimal without binary noise."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(value)


class Side(StrEnum):
    """Which way an order trades. A ``buy`` takes asks, a ``sell`` takes bids."""

    BUY = "buy"
    SELL = "sell"

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(StrEnum):
    LIMIT = "limit"
    MARKET = "market"


class TimeInForce(StrEnum):
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"


class OrderStatus(StrEnum):
    """Life of an order as the journal records it.

    ``pending`` is written *before* the order is sent, so a crash between sending and
    hearing back leaves a trace that recovery can reconcile; ``unknown`` marks an
    order whose fate must be asked of the venue.
    """

    PENDING = "pending"
    OPEN = "open"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"
    UNKNOWN = "unknown"

    @property
    def is_final(self) -> bool:
        return self in _FINAL_STATUSES


_FINAL_STATUSES = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED}
)


class Walk(NamedTuple):
    """Result of walking one side of a book for a size.

    ``filled`` may be less than asked when the book is too thin; ``worst_price`` is
    the last level touched, i.e. the limit price that would fill ``filled`` at once.
    """

    filled: float
    cost: float
    worst_price: float

    @property
    def average_price(self) -> float:
        return self.cost / self.filled if self.filled else 0.0


class OrderBook:
    """An L2 book: ``bids`` sorted by price descending, ``asks`` ascending.

    Deliberately a plain slotted class with list-of-tuple levels: feeds replace the
    lists wholesale on every update and strategies read them, so nothing here may
    allocate per level on the hot path.
    """

    __slots__ = ("asks", "bids", "received_ns", "sequence", "symbol", "timestamp_ms", "venue")

    def __init__(
        self,
        venue: str,
        symbol: str,
        bids: list[Level],
        asks: list[Level],
        timestamp_ms: int | None = None,
        received_ns: int = 0,
        sequence: int | None = None,
    ) -> None:
        self.venue = venue
        self.symbol = symbol
        self.bids = bids
        self.asks = asks
        self.timestamp_ms = timestamp_ms
        self.received_ns = received_ns
        self.sequence = sequence

    @classmethod
    def checked(
        cls,
        venue: str,
        symbol: str,
        bids: list[Level],
        asks: list[Level],
        timestamp_ms: int | None = None,
        received_ns: int = 0,
        sequence: int | None = None,
    ) -> OrderBook:
        """Build a book from untrusted levels, raising ``ValueError`` on a bad ladder."""
        book = cls(venue, symbol, bids, asks, timestamp_ms, received_ns, sequence)
        problem = book.problem()
        if problem:
            raise ValueError(f"{venue} {symbol}: {problem}")
        return book

    def problem(self) -> str | None:
        """Describe what is wrong with this book, or ``None`` when it is well formed."""
        for name, levels, descending in (("bids", self.bids, True), ("asks", self.asks, False)):
            previous: float | None = None
            for price, amount in levels:
                if not (price > 0 and amount > 0):
                    return f"{name} level ({price}, {amount}) must have positive price and amount"
                if previous is not None and (
                    price >= previous if descending else price <= previous
                ):
                    order = "descending" if descending else "ascending"
                    return f"{name} are not strictly {order} at price {price}"
                previous = price
        if self.is_crossed:
            return f"crossed book: best bid {self.bids[0][0]} >= best ask {self.asks[0][0]}"
        return None

    @property
    def best_bid(self) -> float | None:
        return self.bids[0][0] if self.bids else None

    @property
    def best_ask(self) -> float | None:
        return self.asks[0][0] if self.asks else None

    @property
    def is_crossed(self) -> bool:
        return bool(self.bids and self.asks and self.bids[0][0] >= self.asks[0][0])

    @property
    def mid(self) -> float | None:
        if not (self.bids and self.asks):
            return None
        return (self.bids[0][0] + self.asks[0][0]) / 2.0

    @property
    def spread(self) -> float | None:
        if not (self.bids and self.asks):
            return None
        return self.asks[0][0] - self.bids[0][0]

    @property
    def spread_bps(self) -> float | None:
        mid = self.mid
        if not mid:
            return None
        return (self.asks[0][0] - self.bids[0][0]) / mid * 10_000.0

    def levels_for(self, side: Side) -> list[Level]:
        """The levels a taker on ``side`` consumes: asks for a buy, bids for a sell."""
        return self.asks if side is Side.BUY else self.bids

    def walk(self, side: Side, amount: float) -> Walk:
        """Take ``amount`` of base as a taker on ``side``, best level first.

        ``filled`` is either exactly ``amount`` or exactly the sum of the levels, so it
        compares equal to :meth:`depth` on the same levels (no float cancellation).
        """
        filled = 0.0
        cost = 0.0
        worst = 0.0
        if amount <= 0.0:
            return Walk(0.0, 0.0, 0.0)
        for price, size in self.levels_for(side):
            need = amount - filled
            worst = price
            if size >= need:
                cost += need * price
                return Walk(amount, cost, worst)
            cost += size * price
            filled += size
        return Walk(filled, cost, worst)

    def depth(self, side: Side, limit_price: float | None = None) -> float:
        """Base amount a taker on ``side`` can get at ``limit_price`` or better."""
        total = 0.0
        buying = side is Side.BUY
        for price, size in self.levels_for(side):
            if limit_price is not None and (price > limit_price if buying else price < limit_price):
                break
            total += size
        return total

    def vwap(self, side: Side, amount: float) -> float | None:
        """Average price of taking ``amount`` on ``side``; ``None`` if the book is too thin."""
        walk = self.walk(side, amount)
        if amount <= 0.0 or walk.filled < amount:
            return None
        return walk.average_price

    def __repr__(self) -> str:
        return (
            f"OrderBook({self.venue!r}, {self.symbol!r}, bid={self.best_bid}, "
            f"ask={self.best_ask}, levels={len(self.bids)}/{len(self.asks)})"
        )


def _floor_to_step(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(ROUND_FLOOR) * step


def _ceil_to_step(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(ROUND_CEILING) * step


@dataclass(frozen=True, slots=True)
class Market:
    """A symbol on a venue with the grid and limits every order must respect.

    ``price_tick`` and ``amount_step`` are increments (ccxt's TICK_SIZE mode); fees
    are fractions (``Decimal("0.001")`` is 10 bps) and may be negative for rebates.
    """

    venue: str
    symbol: str
    base: str
    quote: str
    price_tick: Decimal
    amount_step: Decimal
    min_amount: Decimal = ZERO
    min_notional: Decimal = ZERO
    max_amount: Decimal | None = None
    taker_fee: Decimal = ZERO
    maker_fee: Decimal = ZERO

    def round_amount(self, amount: Decimal) -> Decimal:
        """Round down to the lot step: never more than was sized."""
        return _floor_to_step(amount, self.amount_step)

    def round_limit_price(self, price: Decimal, side: Side) -> Decimal:
        """Snap a limit to the tick without loosening it: buys down, sells up."""
        if side is Side.BUY:
            return _floor_to_step(price, self.price_tick)
        return _ceil_to_step(price, self.price_tick)

    def order_problem(self, amount: Decimal, price: Decimal) -> str | None:
        """Why an order of ``amount`` at ``price`` would be refused, or ``None``."""
        if amount <= 0:
            return "amount must be positive"
        if price <= 0:
            return "price must be positive"
        if amount % self.amount_step != 0:
            return f"amount {amount} is not a multiple of the lot step {self.amount_step}"
        if price % self.price_tick != 0:
            return f"price {price} is not a multiple of the tick {self.price_tick}"
        if amount < self.min_amount:
            return f"amount {amount} is below the minimum {self.min_amount}"
        if self.max_amount is not None and amount > self.max_amount:
            return f"amount {amount} is above the maximum {self.max_amount}"
        if amount * price < self.min_notional:
            return f"notional {amount * price} is below the minimum {self.min_notional}"
        return None


@dataclass(frozen=True, slots=True)
class Leg:
    """One order an opportunity needs: the limit price bounds its slippage."""

    venue: str
    symbol: str
    side: Side
    amount: Decimal
    limit_price: Decimal

    @property
    def notional(self) -> Decimal:
        return self.amount * self.limit_price


@dataclass(frozen=True, slots=True)
class BookStamp:
    """Which book state a decision used: venue, symbol and the exchange time in ms."""

    venue: str
    symbol: str
    timestamp_ms: int | None
    received_ns: int


@dataclass(frozen=True, slots=True)
class Opportunity:
    """A strategy's proposal: legs to send together and the edge it expects after fees.

    ``edge_quote`` is in ``quote`` currency, net of the taker fees of every leg;
    ``edge_bps`` relates it to the notional bought.
    """

    strategy: str
    legs: tuple[Leg, ...]
    edge_quote: Decimal
    edge_bps: Decimal
    quote: str
    created_ns: int
    books: tuple[BookStamp, ...] = ()

    @property
    def venues(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(leg.venue for leg in self.legs))

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(leg.symbol for leg in self.legs))


@dataclass(frozen=True, slots=True)
class Order:
    """An order as arbot knows it; updates produce new values (``dataclasses.replace``)."""

    client_order_id: str
    venue: str
    symbol: str
    side: Side
    type: OrderType
    amount: Decimal
    price: Decimal | None
    time_in_force: TimeInForce = TimeInForce.IOC
    status: OrderStatus = OrderStatus.PENDING
    filled: Decimal = ZERO
    average_price: Decimal | None = None
    exchange_order_id: str | None = None
    created_ms: int = 0
    updated_ms: int = 0

    @property
    def remaining(self) -> Decimal:
        return self.amount - self.filled


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution of an order; ``fee`` is charged in ``fee_currency``."""

    venue: str
    symbol: str
    side: Side
    amount: Decimal
    price: Decimal
    fee: Decimal
    fee_currency: str
    timestamp_ms: int
    client_order_id: str
    trade_id: str
    is_maker: bool = False

    @property
    def notional(self) -> Decimal:
        return self.amount * self.price


@dataclass(frozen=True, slots=True)
class Balance:
    """Holdings of one asset on one venue: ``used`` is locked in open orders."""

    venue: str
    asset: str
    free: Decimal
    used: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        return self.free + self.used
