"""Risk: approve or reject each opportunity, with a named reason, before any leg is sent.

:meth:`RiskEngine.check` runs the checks below in this order (cheapest first) and stops
at the first that fails; its name is the verdict's ``reason``, stored in
``opportunities.reason`` and shown in reports. The names are stable.

========================  ==============================================================
reason                    rejected when
========================  ==============================================================
``kill_switch``           the kill switch is tripped (max daily loss, max consecutive
                          failed opportunities, ``arbot halt``), until ``arbot resume``
``key_not_proven``        a venue's key has no trade-only proof from the permission
                          guard (or the guard halted trading); live mode only
``stale_book``            a book the opportunity used, or the current book of a leg's
                          market, is missing or older than ``risk.max_book_age_ms``
``order_rate``            a venue would exceed ``risk.max_orders_per_second``
``invalid_leg``           a leg is off its market's grid, below its minimum amount or
                          notional, above its maximum amount, or its market is unknown
``no_valuation``          a leg's notional cannot be valued in the opportunity's quote
``order_notional_cap``    a leg's notional exceeds ``risk.max_order_notional``
``symbol_notional_cap``   in-flight plus new notional on one symbol would exceed
                          ``risk.max_symbol_notional``
``exposure_cap``          open exposure plus the new notional would exceed
                          ``risk.max_open_exposure``
``insufficient_balance``  free balance, less what in-flight opportunities hold, does not
                          cover every leg on a venue (buys: quote for amount x limit x
                          (1 + taker fee); sells: the base amount), summed per asset
========================  ==============================================================

Accounting, all in the opportunity's quote currency (notionals are gross: every leg
counts, bought or sold):

* :meth:`RiskEngine.reserve` when an approved opportunity is sent: its notional is
  in flight (exposure, per-symbol notional), its balance needs are held, and each leg
  uses one order from its venue's rate budget (a token bucket: ``max_orders_per_second``
  per second, bursts up to that many).
* :meth:`RiskEngine.settle` when it is executed: the in-flight notional is released;
  a stranded residual position stays in the open exposure until
  :meth:`RiskEngine.clear_residual`; the realised PnL adds to the UTC day's PnL; an
  outcome of ``failed`` or ``stranded`` adds one consecutive failure, ``filled`` resets
  the count (``unwound`` leaves it). Reaching ``max_daily_loss`` (the day's net realised
  PnL at or below minus the limit) or ``max_consecutive_failures`` trips the kill
  switch, persistently. An operator reset clears the failure count and starts a fresh
  daily-loss budget.
* :meth:`RiskEngine.release` undoes a reservation whose orders were never sent.

Modes are explicit: ``live`` needs a :class:`~arbot.keys.guard.PermissionGuard` and
checks its proofs (the daemon proves every venue at start-up, and the venue asks the
guard again before each order); ``paper`` and ``backtest`` need no keys, and skip the
permission check unless a guard is given.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

from arbot.keys.model import Verdict
from arbot.model import ZERO, Leg, Market, Opportunity, Side, to_decimal

if TYPE_CHECKING:
    from arbot.config import RiskConfig
    from arbot.engine.kill_switch import KillSwitch, KillSwitchState
    from arbot.keys.guard import PermissionGuard
    from arbot.keys.model import KeyPermissions
    from arbot.strategy.context import MarketState

Mode = Literal["live", "paper", "backtest"]
NS_PER_DAY = 86_400 * 1_000_000_000


class Reason(StrEnum):
    """Why an opportunity was rejected; the value is what the store and reports show."""

    KILL_SWITCH = "kill_switch"
    KEY_NOT_PROVEN = "key_not_proven"
    STALE_BOOK = "stale_book"
    ORDER_RATE = "order_rate"
    INVALID_LEG = "invalid_leg"
    NO_VALUATION = "no_valuation"
    ORDER_NOTIONAL_CAP = "order_notional_cap"
    SYMBOL_NOTIONAL_CAP = "symbol_notional_cap"
    EXPOSURE_CAP = "exposure_cap"
    INSUFFICIENT_BALANCE = "insufficient_balance"


CHECK_ORDER: tuple[Reason, ...] = tuple(Reason)
"""The order :meth:`RiskEngine.check` runs its checks in (``no_valuation`` and
``order_notional_cap`` are checked together, leg by leg)."""


FAILED_OUTCOMES = frozenset({"failed", "stranded"})
"""Outcomes (``opportunities.outcome``) that count as a failed opportunity; ``filled``
resets the count; ``unwound`` (and ``unknown``, pending reconciliation) leave it."""


@dataclass(frozen=True, slots=True)
class RiskVerdict:
    """``approved``, or the first failed check's ``reason`` and a one-line ``detail``."""

    approved: bool
    reason: Reason | None = None
    detail: str = ""


APPROVED = RiskVerdict(True)


@dataclass(frozen=True, slots=True)
class Reservation:
    """What an approved, sent opportunity holds until it is settled or released."""

    id: int
    opportunity: Opportunity
    notional: Decimal
    """Gross notional of every leg, in the opportunity's quote."""
    by_symbol: tuple[tuple[str, Decimal], ...]
    holds: tuple[tuple[tuple[str, str], Decimal], ...]
    """``((venue, asset), amount)`` of balance held for the legs."""


@dataclass(slots=True)
class _Plan:
    opportunity: Opportunity
    epoch: int
    notional: Decimal
    by_symbol: dict[str, Decimal]
    needs: dict[tuple[str, str], Decimal]
    orders: dict[str, int]


_EIGHT_PLACES = Decimal("1e-8")


def _show(value: Decimal) -> str:
    """A number for a rejection's detail: at most 8 decimals, no trailing zeros."""
    if value.as_tuple().exponent < -8:  # type: ignore[operator]
        value = value.quantize(_EIGHT_PLACES)
    return f"{value.normalize():f}"


_FEE_FACTORS: dict[Decimal, Decimal] = {}


def _fee_factor(market: Market) -> Decimal:
    """``1 + taker_fee``, computed once per fee level."""
    factor = _FEE_FACTORS.get(market.taker_fee)
    if factor is None:
        factor = _FEE_FACTORS[market.taker_fee] = 1 + market.taker_fee
    return factor


class _Bucket:
    """A token bucket of orders for one venue; the clock is in ns."""

    __slots__ = ("capacity", "per_ns", "stamp_ns", "tokens")

    def __init__(self, rate_per_s: float, now_ns: int) -> None:
        self.capacity = max(rate_per_s, 1.0)
        self.per_ns = rate_per_s / 1e9
        self.tokens = self.capacity
        self.stamp_ns = now_ns

    def available(self, now_ns: int) -> float:
        elapsed = now_ns - self.stamp_ns
        if elapsed <= 0:
            return self.tokens
        return min(self.capacity, self.tokens + elapsed * self.per_ns)

    def allows(self, count: int, now_ns: int) -> bool:
        # A burst larger than the bucket goes when the bucket is full, then repays.
        return self.available(now_ns) >= min(count, self.capacity) - 1e-9

    def take(self, count: int, now_ns: int) -> None:
        self.tokens = self.available(now_ns) - count
        self.stamp_ns = max(now_ns, self.stamp_ns)


class RiskEngine:
    """Approves or rejects opportunities and keeps the exposure, loss and failure books.

    Parameters:
        config: the ``[risk]`` limits.
        state: the engine's :class:`MarketState` (books with receive times, markets,
            free balances; the portfolio keeps the balances current).
        mode: ``live`` (requires ``guard``), ``paper`` or ``backtest``.
        kill_switch: the (usually store-backed) :class:`KillSwitch`.
        guard: the permission guard whose proofs the ``key_not_proven`` check reads.
        allow_unverified: venues whose operator set ``allow_unverified_key``: an
            ``unverified`` proof passes there (an ``unsafe`` one never does).
        clock: ns since the epoch; default ``state.clock`` (the replay clock in backtests).
        realized_pnl_today: PnL already realised today (UTC), e.g. read back at restart.
    """

    def __init__(
        self,
        config: RiskConfig,
        state: MarketState,
        *,
        mode: Mode,
        kill_switch: KillSwitch,
        guard: PermissionGuard | None = None,
        allow_unverified: Collection[str] = (),
        clock: Callable[[], int] | None = None,
        realized_pnl_today: Decimal = ZERO,
    ) -> None:
        if mode == "live" and guard is None:
            raise ValueError("live mode needs a permission guard: no proven key, no order")
        self.config = config
        self.state = state
        self.mode = mode
        self.kill_switch = kill_switch
        self.guard = guard
        self.allow_unverified = frozenset(allow_unverified)
        self.clock = clock or state.clock
        self._max_age_ns = config.max_book_age_ms * 1_000_000
        self._proven: dict[str, KeyPermissions] = {}
        self._buckets: dict[str, _Bucket] = {}
        self._last: _Plan | None = None
        self._next_id = 1
        self._epoch = 0  # bumped by every reserve, release and settle
        self._reservations: dict[int, Reservation] = {}
        self._in_flight = ZERO
        self._symbol_open: dict[str, Decimal] = {}
        self._held: dict[tuple[str, str], Decimal] = {}
        self._residuals: dict[int, Decimal] = {}
        self._residual_total = ZERO
        self._day = self.clock() // NS_PER_DAY
        self._day_pnl = realized_pnl_today
        self.consecutive_failures = 0
        self.rejections: Counter[Reason] = Counter()
        """How many opportunities each check rejected since start."""
        kill_switch.add_listener(self._on_kill_switch)

    # ----- the check -------------------------------------------------------------------

    def update_config(self, config: RiskConfig) -> None:
        """New limits (SIGHUP, ``arbot reload``): they apply from the next check on.

        Reservations, the day's PnL and the failure count stay; each venue's order
        bucket keeps its tokens under the new rate.
        """
        self.config = config
        self._max_age_ns = config.max_book_age_ms * 1_000_000
        self.state.max_book_age_ms = config.max_book_age_ms
        for bucket in self._buckets.values():
            bucket.capacity = max(config.max_orders_per_second, 1.0)
            bucket.per_ns = config.max_orders_per_second / 1e9
            bucket.tokens = min(bucket.tokens, bucket.capacity)

    def check(self, opportunity: Opportunity) -> RiskVerdict:
        """Approve ``opportunity`` or name the first check it fails. Changes no books."""
        verdict = self._check(opportunity)
        if verdict.reason is not None:
            self.rejections[verdict.reason] += 1
        return verdict

    def _check(self, opp: Opportunity) -> RiskVerdict:
        self._last = None
        if self.kill_switch.is_tripped:
            st = self.kill_switch.state
            return RiskVerdict(
                False, Reason.KILL_SWITCH, f"tripped by {st.source}: {st.reason}; arbot resume"
            )
        legs = opp.legs
        if not legs:
            return RiskVerdict(False, Reason.INVALID_LEG, "the opportunity has no legs")
        if self.guard is not None:
            problem = self._key_problem(legs)
            if problem is not None:
                return RiskVerdict(False, Reason.KEY_NOT_PROVEN, problem)
        now = self.clock()
        verdict = self._check_books(opp, now)
        if verdict is not None:
            return verdict
        orders: dict[str, int] = {}
        for leg in legs:
            orders[leg.venue] = orders.get(leg.venue, 0) + 1
        if self._buckets:
            verdict = self._check_rate(orders, now)
            if verdict is not None:
                return verdict
        markets = self.state.markets
        found: list[tuple[Leg, Market, Decimal]] = []
        for leg in legs:
            market = markets.get((leg.venue, leg.symbol))
            if market is None:
                return RiskVerdict(
                    False, Reason.INVALID_LEG, f"{leg.venue} {leg.symbol}: market not loaded"
                )
            amount = leg.amount
            price = leg.limit_price
            # Market.order_problem's rules, inline so the notional is computed once;
            # it still words the rejection.
            try:
                cost = amount * price  # in the market's quote
                bad = (
                    amount <= 0
                    or price <= 0
                    or amount % market.amount_step
                    or price % market.price_tick
                    or amount < market.min_amount
                    or (market.max_amount is not None and amount > market.max_amount)
                    or cost < market.min_notional
                )
            except ArithmeticError:  # NaN, infinity, a quotient past the context precision
                return RiskVerdict(
                    False,
                    Reason.INVALID_LEG,
                    f"{leg.venue} {leg.symbol} {leg.side}: amount {amount} at {price} is not "
                    "a usable number (NaN, infinite, or beyond decimal precision)",
                )
            if bad:
                problem = market.order_problem(amount, price)
                return RiskVerdict(
                    False, Reason.INVALID_LEG, f"{leg.venue} {leg.symbol} {leg.side}: {problem}"
                )
            found.append((leg, market, cost))
        return self._check_sizes(opp, found, orders)

    def _check_books(self, opp: Opportunity, now: int) -> RiskVerdict | None:
        books = self.state.books
        oldest = now - self._max_age_ns
        for leg in opp.legs:
            book = books.get((leg.venue, leg.symbol))
            if book is None:
                return RiskVerdict(
                    False, Reason.STALE_BOOK, f"{leg.venue} {leg.symbol}: no book yet"
                )
            if book.received_ns < oldest:
                return self._stale(leg.venue, leg.symbol, now - book.received_ns)
        for stamp in opp.books:
            if stamp.received_ns < oldest:
                return self._stale(stamp.venue, stamp.symbol, now - stamp.received_ns)
        return None

    def _check_rate(self, orders: dict[str, int], now: int) -> RiskVerdict | None:
        for venue, count in orders.items():
            bucket = self._buckets.get(venue)
            if bucket is not None and not bucket.allows(count, now):
                return RiskVerdict(
                    False,
                    Reason.ORDER_RATE,
                    f"{venue}: {count} more order(s) would exceed "
                    f"{self.config.max_orders_per_second:g} per second",
                )
        return None

    def _check_sizes(
        self, opp: Opportunity, found: list[tuple[Leg, Market, Decimal]], orders: dict[str, int]
    ) -> RiskVerdict:
        quote = opp.quote
        cap = self.config.max_order_notional
        total = ZERO
        by_symbol: dict[str, Decimal] = {}
        needs: dict[tuple[str, str], Decimal] = {}
        for leg, market, cost in found:
            if market.quote == quote:
                value = cost
            else:
                price = self._price(market.quote, quote, opp)
                if price is None:
                    return RiskVerdict(
                        False,
                        Reason.NO_VALUATION,
                        f"{leg.venue} {leg.symbol}: no price for {market.quote} in {quote}",
                    )
                value = cost * price
            if value > cap:
                return RiskVerdict(
                    False,
                    Reason.ORDER_NOTIONAL_CAP,
                    f"{leg.venue} {leg.symbol} {leg.side}: notional {_show(value)} {quote} "
                    f"> max_order_notional {cap}",
                )
            total += value
            symbol = leg.symbol
            seen = by_symbol.get(symbol)
            by_symbol[symbol] = value if seen is None else seen + value
            if leg.side is Side.BUY:
                key = (leg.venue, market.quote)
                need = cost * _fee_factor(market)
            else:
                key = (leg.venue, market.base)
                need = leg.amount
            seen = needs.get(key)
            needs[key] = need if seen is None else seen + need

        cap = self.config.max_symbol_notional
        symbol_open = self._symbol_open
        for symbol, value in by_symbol.items():
            open_ = symbol_open.get(symbol, ZERO) if symbol_open else ZERO
            if (open_ + value if open_ else value) > cap:
                return RiskVerdict(
                    False,
                    Reason.SYMBOL_NOTIONAL_CAP,
                    f"{symbol}: {_show(open_)} in flight + {_show(value)} {quote} "
                    f"> max_symbol_notional {cap}",
                )

        exposure = self._in_flight + self._residual_total
        cap = self.config.max_open_exposure
        if (exposure + total if exposure else total) > cap:
            return RiskVerdict(
                False,
                Reason.EXPOSURE_CAP,
                f"open {_show(exposure)} + {_show(total)} {quote} > max_open_exposure {cap}",
            )

        balances = self.state.balances
        held = self._held
        for key, need in needs.items():
            available = balances.get(key, ZERO)
            if held:
                available -= held.get(key, ZERO)
            if available < need:
                return RiskVerdict(
                    False,
                    Reason.INSUFFICIENT_BALANCE,
                    f"{key[0]}: needs {_show(need)} {key[1]}, has {_show(available)} free"
                    + (" after in-flight holds" if key in held else ""),
                )

        self._last = _Plan(opp, self._epoch, total, by_symbol, needs, orders)
        return APPROVED

    def _key_problem(self, legs: tuple[Leg, ...]) -> str | None:
        guard = self.guard
        assert guard is not None
        if guard.halted:
            return f"trading halted by the permission guard: {guard.halted}"
        proven = self._proven
        for leg in legs:
            venue = leg.venue
            try:
                proof = guard.last_proof(venue)
            except KeyError:
                return f"{venue}: no key registered with the permission guard"
            if proof is None:
                return f"{venue}: the key has not been proven trade-only yet"
            if proven.get(venue) is proof:
                continue
            verdict = proof.verdict
            if verdict is Verdict.TRADE_ONLY or (
                verdict is Verdict.UNVERIFIED and venue in self.allow_unverified
            ):
                proven[venue] = proof
                continue
            return f"{venue}: {proof.reason}"
        return None

    def _stale(self, venue: str, symbol: str, age_ns: int) -> RiskVerdict:
        return RiskVerdict(
            False,
            Reason.STALE_BOOK,
            f"{venue} {symbol}: book is {age_ns / 1e6:.0f} ms old "
            f"> max_book_age_ms {self.config.max_book_age_ms}",
        )

    def _price(self, asset: str, quote: str, opp: Opportunity) -> Decimal | None:
        """The price of ``asset`` in ``quote``: from the opportunity's own legs, else a book."""
        markets = self.state.markets
        for leg in opp.legs:
            market = markets[(leg.venue, leg.symbol)]
            if market.base == asset and market.quote == quote:
                return leg.limit_price
            if market.base == quote and market.quote == asset:
                return 1 / leg.limit_price
        for symbol, inverse in ((f"{asset}/{quote}", False), (f"{quote}/{asset}", True)):
            for venue in self.state.venues_by_symbol.get(symbol, ()):
                book = self.state.books.get((venue, symbol))
                mid = book.mid if book is not None else None
                if mid:
                    price = to_decimal(mid)
                    return 1 / price if inverse else price
        return None

    # ----- accounting ------------------------------------------------------------------

    def admit(self, opportunity: Opportunity) -> tuple[RiskVerdict, Reservation | None]:
        """:meth:`check`, then :meth:`reserve` if approved (call right before sending)."""
        verdict = self.check(opportunity)
        return verdict, (self.reserve(opportunity) if verdict.approved else None)

    def reserve(self, opportunity: Opportunity) -> Reservation:
        """Book an approved opportunity as in flight: notional, held balances, order budget.

        Reuses the :meth:`check` just made on the same object if nothing was reserved,
        released or settled since, else checks again; raises ``ValueError`` if it is not
        approved. Prefer :meth:`admit`, which does both with no await in between.
        """
        plan = self._last
        if (
            plan is None
            or plan.opportunity is not opportunity
            or plan.epoch != self._epoch
            or self.kill_switch.is_tripped
        ):
            verdict = self.check(opportunity)
            plan = self._last
            if plan is None:
                raise ValueError(f"reserve() needs an approved opportunity: {verdict.reason}")
        self._last = None
        now = self.clock()
        rate = self.config.max_orders_per_second
        for venue, count in plan.orders.items():
            bucket = self._buckets.get(venue)
            if bucket is None:
                bucket = self._buckets[venue] = _Bucket(rate, now)
            bucket.take(count, now)
        self._in_flight += plan.notional
        for symbol, value in plan.by_symbol.items():
            self._symbol_open[symbol] = self._symbol_open.get(symbol, ZERO) + value
        for key, need in plan.needs.items():
            self._held[key] = self._held.get(key, ZERO) + need
        reservation = Reservation(
            self._next_id,
            opportunity,
            plan.notional,
            tuple(plan.by_symbol.items()),
            tuple(plan.needs.items()),
        )
        self._next_id += 1
        self._epoch += 1
        self._reservations[reservation.id] = reservation
        return reservation

    def record_orders(self, venue: str, count: int = 1) -> None:
        """Count orders sent outside an opportunity (unwinds) against ``venue``'s rate."""
        now = self.clock()
        bucket = self._buckets.get(venue)
        if bucket is None:
            bucket = self._buckets[venue] = _Bucket(self.config.max_orders_per_second, now)
        bucket.take(count, now)

    def release(self, reservation: Reservation) -> bool:
        """Drop what ``reservation`` holds (its orders were never sent).

        Returns ``False`` (and does nothing) if it was already released or settled.
        """
        if self._reservations.pop(reservation.id, None) is None:
            return False
        self._epoch += 1
        self._in_flight -= reservation.notional
        for symbol, value in reservation.by_symbol:
            left = self._symbol_open[symbol] - value
            if left > 0:
                self._symbol_open[symbol] = left
            else:
                del self._symbol_open[symbol]
        for key, need in reservation.holds:
            left = self._held[key] - need
            if left > 0:
                self._held[key] = left
            else:
                del self._held[key]
        if not self._reservations:
            self._in_flight = ZERO  # no drift from repeated add/subtract
        return True

    def settle(
        self,
        reservation: Reservation,
        outcome: str,
        *,
        realized_pnl: Decimal = ZERO,
        residual_quote: Decimal = ZERO,
    ) -> None:
        """Record how an executed opportunity ended (releases it); may trip the kill switch.

        ``outcome`` is ``filled``, ``unwound``, ``stranded`` or ``failed`` (anything else,
        e.g. ``unknown``, neither counts as a failure nor resets the count);
        ``realized_pnl`` is in the opportunity's quote (negative for a loss);
        ``residual_quote`` values a stranded position, which stays in the open exposure
        until :meth:`clear_residual`. A reservation already settled or released is
        ignored, so nothing is counted twice.
        """
        if not self.release(reservation):
            return
        if residual_quote > 0:
            self._residuals[reservation.id] = residual_quote
            self._residual_total += residual_quote
        self._roll_day()
        self._day_pnl += realized_pnl
        if outcome in FAILED_OUTCOMES:
            self.consecutive_failures += 1
        elif outcome == "filled":
            self.consecutive_failures = 0
        if self.kill_switch.is_tripped:
            return
        if self._day_pnl <= -self.config.max_daily_loss:
            self.kill_switch.trip("max_daily_loss", "risk")
        elif self.consecutive_failures >= self.config.max_consecutive_failures:
            self.kill_switch.trip("max_consecutive_failures", "risk")

    def clear_residual(self, reservation: Reservation | int) -> None:
        """A stranded position was closed (by an unwind or the operator): stop counting it."""
        key = reservation if isinstance(reservation, int) else reservation.id
        amount = self._residuals.pop(key, None)
        if amount is not None:
            self._residual_total -= amount

    def _roll_day(self) -> None:
        day = self.clock() // NS_PER_DAY
        if day != self._day:
            self._day = day
            self._day_pnl = ZERO

    def _on_kill_switch(self, old: KillSwitchState, new: KillSwitchState) -> None:
        # A new reset row (an operator's decision) grants fresh budgets; recovering from
        # an unreadable table (same row as before) does not.
        if old.tripped and not new.tripped and new.row_id != old.row_id:
            self.consecutive_failures = 0
            self._day_pnl = ZERO

    # ----- what status and reports show ------------------------------------------------

    @property
    def open_exposure(self) -> Decimal:
        """In-flight notional plus stranded residuals, in quote."""
        return self._in_flight + self._residual_total

    @property
    def realized_pnl_today(self) -> Decimal:
        self._roll_day()
        return self._day_pnl

    @property
    def in_flight(self) -> tuple[Reservation, ...]:
        return tuple(self._reservations.values())

    def held(self, venue: str, asset: str) -> Decimal:
        """Balance of ``asset`` on ``venue`` held by in-flight opportunities."""
        return self._held.get((venue, asset), ZERO)

    def snapshot(self) -> dict[str, Any]:
        """Plain data for ``arbot status``."""
        return {
            "mode": self.mode,
            "kill_switch": self.kill_switch.state.to_dict(),
            "open_exposure": str(self.open_exposure),
            "in_flight": len(self._reservations),
            "residual_quote": str(self._residual_total),
            "realized_pnl_today": str(self.realized_pnl_today),
            "consecutive_failures": self.consecutive_failures,
            "rejections": {reason.value: n for reason, n in self.rejections.items()},
        }
