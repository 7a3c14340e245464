"""Helpers for testing strategy plugins with plain lists, and against the simulator.

A strategy is synchronous and pure, so most of its tests need no network and no event
loop: build a few books with :func:`book_update`, markets with :func:`market`, and feed
them through :func:`run_strategy`, which keeps a :class:`MarketState` exactly as the
engine does and collects what the strategy returns. By default every opportunity is
checked on the spot with :func:`assert_valid_opportunity` (legs on the market's grid,
within its limits, covered by the balances).

:func:`run_on_simulator` runs the same strategy on live books streamed from the local
exchange simulator (markets and balances loaded from its venues), for the step between
unit tests and ``arbot backtest``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from arbot.feeds.book_feed import BookUpdate
from arbot.model import Balance, Fill, Level, Market, Opportunity, OrderBook, Side, to_decimal
from arbot.strategy.base import BookKey, Strategy
from arbot.strategy.context import Clock, MarketState, StrategyContext

if TYPE_CHECKING:
    from arbot.sim.server import SimServer

Number = Decimal | str | int | float
"""Anything :func:`arbot.model.to_decimal` turns into an exact Decimal."""

BalancesInput = Mapping[tuple[str, str], Number] | Iterable[Balance]
"""``{(venue, asset): free}`` or :class:`~arbot.model.Balance` values."""


def book_update(
    venue: str,
    symbol: str,
    bids: Iterable[tuple[float, float]] = (),
    asks: Iterable[tuple[float, float]] = (),
    *,
    received_ns: int = 0,
    exchange_ms: int | None = None,
    sequence: int | None = None,
    check: bool = True,
) -> BookUpdate:
    """A :class:`BookUpdate` from ``(price, amount)`` lists, bids best first, asks best first.

    With ``check`` (the default) a ladder a venue could never send (unsorted, a zero
    amount, bids crossing asks) raises ``ValueError`` naming the problem.
    """
    bid_levels: list[Level] = [(float(p), float(q)) for p, q in bids]
    ask_levels: list[Level] = [(float(p), float(q)) for p, q in asks]
    if check:
        OrderBook.checked(venue, symbol, bid_levels, ask_levels)
    return BookUpdate(venue, symbol, bid_levels, ask_levels, exchange_ms, received_ns, sequence)


def market(
    venue: str,
    symbol: str = "BTC/USDT",
    *,
    price_tick: Number = "0.01",
    amount_step: Number = "0.00001",
    min_amount: Number | None = None,
    min_notional: Number = "5",
    max_amount: Number | None = None,
    taker_fee: Number = "0.001",
    maker_fee: Number = "0.001",
) -> Market:
    """A :class:`Market` with a typical spot grid: tick 0.01, lot 0.00001, 10 bps fees.

    ``base`` and ``quote`` come from ``symbol``; ``min_amount`` defaults to one lot.
    """
    base, _, quote = symbol.partition("/")
    if not (base and quote):
        raise ValueError(f"symbol {symbol!r}: expected BASE/QUOTE")
    step = to_decimal(amount_step)
    return Market(
        venue=venue,
        symbol=symbol,
        base=base,
        quote=quote,
        price_tick=to_decimal(price_tick),
        amount_step=step,
        min_amount=step if min_amount is None else to_decimal(min_amount),
        min_notional=to_decimal(min_notional),
        max_amount=None if max_amount is None else to_decimal(max_amount),
        taker_fee=to_decimal(taker_fee),
        maker_fee=to_decimal(maker_fee),
    )


class ManualClock:
    """A clock for tests: ``clock()`` is the time in ns; it moves only when told."""

    __slots__ = ("now_ns",)

    def __init__(self, start_ns: int = 0) -> None:
        self.now_ns = start_ns

    def __call__(self) -> int:
        return self.now_ns

    def advance(self, *, ns: int = 0, ms: float = 0.0, s: float = 0.0) -> int:
        """Move forward and return the new time."""
        self.now_ns += ns + round(ms * 1e6) + round(s * 1e9)
        return self.now_ns


def opportunity_problems(
    opportunity: Opportunity, ctx: StrategyContext, *, check_stale: bool = True
) -> list[str]:
    """Everything risk would refuse in ``opportunity``; empty when it is valid.

    Checks each leg against its market (known, amount on the lot step, limit on the tick,
    min/max amount, min notional), that the free balances cover all legs together (a
    buy needs its notional plus the taker fee in quote, what a venue may lock for it; a
    sell needs its amount in base), that no leg's book is stale at ``ctx.now_ns``, and
    that the edge figures are finite.
    """
    problems: list[str] = []
    if not opportunity.legs:
        problems.append("no legs")
    if not (opportunity.edge_quote.is_finite() and opportunity.edge_bps.is_finite()):
        problems.append(
            f"edge must be finite (edge_quote {opportunity.edge_quote}, "
            f"edge_bps {opportunity.edge_bps})"
        )
    needed: dict[tuple[str, str], Decimal] = {}
    for index, leg in enumerate(opportunity.legs):
        label = f"leg {index} ({leg.side} {leg.amount} {leg.symbol} on {leg.venue})"
        info = ctx.market(leg.venue, leg.symbol)
        if info is None:
            problems.append(f"{label}: no market {leg.symbol} on {leg.venue}")
            continue
        problem = info.order_problem(leg.amount, leg.limit_price)
        if problem:
            problems.append(f"{label}: {problem}")
        if leg.side is Side.BUY:
            key = (leg.venue, info.quote)
            cost = leg.amount * leg.limit_price * (1 + max(info.taker_fee, Decimal(0)))
            needed[key] = needed.get(key, Decimal(0)) + cost
        else:
            key = (leg.venue, info.base)
            needed[key] = needed.get(key, Decimal(0)) + leg.amount
        if check_stale and ctx.is_stale(leg.venue, leg.symbol):
            age = ctx.book_age_ms(leg.venue, leg.symbol)
            shown = "no book" if age is None else f"book is {age:.0f} ms old"
            problems.append(f"{label}: stale ({shown}, limit {ctx.max_book_age_ms:.0f} ms)")
    for (venue, asset), amount in needed.items():
        free = ctx.balance(venue, asset)
        if amount > free:
            problems.append(f"needs {amount} {asset} on {venue}, only {free} free")
    return problems


def assert_valid_opportunity(
    opportunity: Opportunity, ctx: StrategyContext, *, check_stale: bool = True
) -> None:
    """Fail (``AssertionError`` listing every problem) unless risk could accept it.

    See :func:`opportunity_problems` for what is checked.
    """
    problems = opportunity_problems(opportunity, ctx, check_stale=check_stale)
    if problems:
        raise AssertionError(
            f"invalid opportunity from {opportunity.strategy!r}: " + "; ".join(problems)
        )


class StrategyHarness:
    """Drives one strategy the way the engine does, without venues or an event loop.

    * :meth:`start` asks :meth:`Strategy.books` which books it wants and calls
      :meth:`Strategy.on_start` once (the first :meth:`feed` does it if you do not);
    * :meth:`feed` applies an update to the :class:`MarketState` and calls
      :meth:`Strategy.on_book` when the strategy asked for that book (others are
      counted in ``skipped``, as the engine would never stream them);
    * returned opportunities are collected in ``opportunities`` and, with ``check``,
      validated on the spot by :func:`assert_valid_opportunity`.

    Without a ``clock`` the harness replays: the time is the ``received_ns`` of the
    latest update fed (never going back), so books are fresh unless a test says
    otherwise. Pass a :class:`ManualClock` (or any ``() -> ns``) to control time.
    """

    def __init__(
        self,
        strategy: Strategy,
        *,
        markets: Iterable[Market] = (),
        balances: BalancesInput | None = None,
        clock: Clock | None = None,
        max_book_age_ms: float = 1000.0,
        check: bool = True,
    ) -> None:
        self.strategy = strategy
        self.check = check
        self._replay = clock is None
        self.clock: Clock = ManualClock() if clock is None else clock
        self.state = MarketState(markets, clock=self.clock, max_book_age_ms=max_book_age_ms)
        for balance in _balances(balances):
            self.state.set_balance(balance.venue, balance.asset, balance.free)
        self.context: StrategyContext = self.state.context()
        self.opportunities: list[Opportunity] = []
        self.wanted: frozenset[BookKey] = frozenset()
        self.updates = 0
        self.skipped = 0
        self.started = False

    def start(self) -> None:
        """Ask for the wanted books and call ``on_start``; later calls do nothing."""
        if self.started:
            return
        self.started = True
        self.wanted = frozenset(self.strategy.books(self.context.markets))
        self.strategy.on_start(self.context)

    def set_balance(self, venue: str, asset: str, free: Number) -> None:
        self.state.set_balance(venue, asset, to_decimal(free))

    def feed(self, update: BookUpdate) -> list[Opportunity]:
        """Apply one update, run ``on_book`` if the book is wanted; return its opportunities."""
        key = (update.venue, update.symbol)
        if key not in self.state.markets:
            raise ValueError(
                f"no market for {update.venue} {update.symbol}; pass "
                f"markets=[market({update.venue!r}, {update.symbol!r})]"
            )
        self.start()
        if key not in self.wanted:
            self.skipped += 1
            return []
        if self._replay and isinstance(self.clock, ManualClock):
            self.clock.now_ns = max(self.clock.now_ns, update.received_ns)
        self.state.apply(update)
        self.updates += 1
        return self._collect(self.strategy.on_book(update, self.context), "on_book")

    def feed_all(self, updates: Iterable[BookUpdate]) -> list[Opportunity]:
        """Feed every update in order; return all opportunities they produced."""
        out: list[Opportunity] = []
        for update in updates:
            out.extend(self.feed(update))
        return out

    def timer(self) -> list[Opportunity]:
        """Run ``on_timer`` once (the engine does every ``timer_interval_s``)."""
        self.start()
        return self._collect(self.strategy.on_timer(self.context), "on_timer")

    def fill(self, fill: Fill) -> None:
        """Deliver a fill to ``on_fill``."""
        self.start()
        self.strategy.on_fill(fill, self.context)

    def _collect(self, result: object, hook: str) -> list[Opportunity]:
        if not isinstance(result, (list, tuple)):
            raise TypeError(
                f"{type(self.strategy).__name__}.{hook} returned {type(result).__name__}; "
                "it must return a list of Opportunity"
            )
        out: list[Opportunity] = []
        for item in result:
            if not isinstance(item, Opportunity):
                raise TypeError(
                    f"{type(self.strategy).__name__}.{hook} returned a "
                    f"{type(item).__name__} in its list; expected Opportunity"
                )
            if self.check:
                assert_valid_opportunity(item, self.context)
                if item.strategy != self.strategy.name:
                    raise AssertionError(
                        f"opportunity names strategy {item.strategy!r}, expected "
                        f"{self.strategy.name!r} (use strategy=self.name)"
                    )
            out.append(item)
        self.opportunities.extend(out)
        return out


def run_strategy(
    strategy: Strategy,
    updates: Iterable[BookUpdate],
    *,
    markets: Iterable[Market] = (),
    balances: BalancesInput | None = None,
    clock: Clock | None = None,
    max_book_age_ms: float = 1000.0,
    check: bool = True,
) -> StrategyHarness:
    """Feed ``updates`` through a fresh :class:`StrategyHarness`; return it.

    ``harness.opportunities`` holds what the strategy returned, in order;
    ``harness.context`` is the context as it stands after the last update.
    """
    harness = StrategyHarness(
        strategy,
        markets=markets,
        balances=balances,
        clock=clock,
        max_book_age_ms=max_book_age_ms,
        check=check,
    )
    harness.start()
    harness.feed_all(updates)
    return harness


def load_plugin(file: Path | str, name: str | None = None) -> type[Strategy]:
    """The strategy class in plugin ``file``, loaded and checked exactly as arbot does.

    Raises :class:`~arbot.errors.ConfigError` with arbot's one-line explanation when the
    file is not a valid plugin, or holds several and ``name`` does not pick one.
    """
    from arbot.errors import ConfigError
    from arbot.strategy.loader import load_file

    infos, problems = load_file(file)
    if name is not None:
        infos = [info for info in infos if info.name == name]
    if len(infos) == 1:
        return infos[0].cls
    if problems:
        raise ConfigError("; ".join(str(problem) for problem in problems))
    if not infos:
        raise ConfigError(f"{file}: no strategy named {name!r}")
    names = ", ".join(info.name for info in infos)
    raise ConfigError(f"{file}: defines several strategies ({names}); pass name=")


async def run_on_simulator(
    strategy: Strategy,
    server: SimServer,
    *,
    venues: Sequence[str] | None = None,
    symbols: Sequence[str] | None = None,
    updates: int | None = None,
    seconds: float | None = None,
    timeout_s: float = 30.0,
    depth: int = 10,
    max_book_age_ms: float = 1000.0,
    check: bool = True,
) -> StrategyHarness:
    """Run ``strategy`` on books streamed live from a running simulator.

    Connects a :class:`~arbot.venues.ccxt_venue.CcxtVenue` to each of ``venues``
    (default: all of ``server``'s) with its trade-only key, loads markets of
    ``symbols`` (default ``BTC/USDT`` and ``ETH/USDT``) and balances into a
    :class:`StrategyHarness` on the wall clock, streams the books the strategy asks
    for through :class:`~arbot.feeds.book_feed.BookFeed` and calls ``on_book`` for
    each update until ``updates`` updates were handled or ``seconds`` passed. At
    least one bound is required; with only ``updates``, not getting them within
    ``timeout_s`` raises ``TimeoutError``. Nothing is ever ordered: this shows what
    the strategy *would* propose (the engine, risk and execution come later).
    """
    from arbot.feeds.book_feed import BookFeed
    from arbot.testing.sim import sim_venue_config
    from arbot.venues.ccxt_venue import CcxtVenue

    if updates is None and seconds is None:
        raise ValueError("pass updates=N, seconds=S, or both")
    names = list(venues) if venues is not None else list(server.venues)
    wanted_symbols = list(symbols) if symbols is not None else ["BTC/USDT", "ETH/USDT"]
    connected = [
        CcxtVenue(name, sim_venue_config(server, name, symbols=wanted_symbols), None)
        for name in names
    ]
    tasks: list[asyncio.Task[None]] = []
    try:
        loaded_markets: list[Market] = []
        loaded_balances: list[Balance] = []
        for venue in connected:
            loaded_markets.extend((await venue.load_markets()).values())
            loaded_balances.extend((await venue.fetch_balances()).values())
        harness = StrategyHarness(
            strategy,
            markets=loaded_markets,
            balances=loaded_balances,
            clock=time.time_ns,
            max_book_age_ms=max_book_age_ms,
            check=check,
        )
        harness.start()
        queue: asyncio.Queue[BookUpdate] = asyncio.Queue()
        by_name = {venue.name: venue for venue in connected}
        for venue_name, symbol in sorted(harness.wanted):
            feed = BookFeed(by_name[venue_name], symbol, queue.put_nowait, depth=depth)
            tasks.append(asyncio.create_task(feed.run(), name=f"feed-{feed.name}"))
        limit_s = seconds if seconds is not None else timeout_s
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit_s
        while updates is None or harness.updates < updates:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            getter = asyncio.ensure_future(queue.get())
            try:
                done, _ = await asyncio.wait(
                    {getter, *tasks}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                if not getter.done():
                    getter.cancel()
            for task in tasks:
                if task in done:
                    task.result()  # a feed that failed raises its error here
                    raise RuntimeError(f"{task.get_name()} stopped")
            if getter not in done:
                break
            harness.feed(getter.result())
        if seconds is None and updates is not None and harness.updates < updates:
            raise TimeoutError(
                f"{harness.updates} of {updates} book updates arrived within {timeout_s} s"
            )
        return harness
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for venue in connected:
            await asyncio.wait_for(venue.close(), timeout=10)


def _balances(balances: BalancesInput | None) -> list[Balance]:
    if balances is None:
        return []
    if isinstance(balances, Mapping):
        return [
            Balance(venue, asset, to_decimal(free)) for (venue, asset), free in balances.items()
        ]
    return list(balances)
