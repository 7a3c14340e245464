"""The risk engine: every rejection reason at its boundary, the accounting, the properties.

Each reason has a test that sits on both sides of its limit (approved at it, rejected
just past it), so a check that stopped working would fail here.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arbot.config import RiskConfig
from arbot.engine.kill_switch import KillSwitch
from arbot.engine.risk import CHECK_ORDER, Reason, RiskEngine
from arbot.keys.guard import PermissionGuard
from arbot.keys.model import KeyPermissions
from arbot.model import BookStamp, Leg, Market, Opportunity, OrderBook, Side
from arbot.strategy.context import MarketState

D = Decimal
T0 = 1_700_000_000 * 10**9
MS = 1_000_000
FEE = D("0.001")


class Clock:
    def __init__(self, now: int = T0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def market(venue: str, symbol: str = "BTC/USDT", **kw: Any) -> Market:
    base, quote = symbol.split("/")
    fields: dict[str, Any] = {
        "price_tick": D("0.01"),
        "amount_step": D("0.00001"),
        "min_amount": D("0.00001"),
        "min_notional": D("5"),
        "max_amount": D("9000"),
        "taker_fee": FEE,
    }
    fields.update(kw)
    return Market(venue, symbol, base, quote, **fields)


def make_state(
    clock: Clock, *, balances: dict[tuple[str, str], Decimal] | None = None
) -> MarketState:
    state = MarketState(
        [
            market("a"),
            market("b"),
            market(
                "a",
                "ETH/BTC",
                price_tick=D("0.00001"),
                amount_step=D("0.0001"),
                min_amount=D("0.0001"),
                min_notional=D("0.0001"),
            ),
            market("a", "ETH/USDT", amount_step=D("0.0001"), min_amount=D("0.0001")),
        ],
        clock=clock,
    )
    for venue in ("a", "b"):
        for symbol, bid, ask in (
            ("BTC/USDT", 60000.0, 60001.0),
            ("ETH/USDT", 3000.0, 3000.5),
            ("ETH/BTC", 0.05, 0.05001),
        ):
            if (venue, symbol) in state.markets:
                state.books[(venue, symbol)] = OrderBook(
                    venue, symbol, [(bid, 5.0)], [(ask, 5.0)], received_ns=clock.now
                )
    for (venue, asset), amount in (
        balances
        or {
            ("a", "USDT"): D(100_000),
            ("b", "USDT"): D(100_000),
            ("a", "BTC"): D(2),
            ("b", "BTC"): D(2),
            ("a", "ETH"): D(30),
        }
    ).items():
        state.set_balance(venue, asset, amount)
    return state


def cross(
    amount: str = "0.01",
    buy: str = "60001.00",
    sell: str = "60100.00",
    *,
    stamps: tuple[BookStamp, ...] = (),
) -> Opportunity:
    return Opportunity(
        "cross",
        (
            Leg("a", "BTC/USDT", Side.BUY, D(amount), D(buy)),
            Leg("b", "BTC/USDT", Side.SELL, D(amount), D(sell)),
        ),
        D(1),
        D(10),
        "USDT",
        T0,
        stamps,
    )


def config(**kw: Any) -> RiskConfig:
    return RiskConfig(**{"max_orders_per_second": 1000, **kw})


def engine(clock: Clock | None = None, state: MarketState | None = None, **kw: Any) -> RiskEngine:
    clock = clock or Clock()
    guard = kw.pop("guard", None)
    mode = kw.pop("mode", "paper")
    allow = kw.pop("allow_unverified", ())
    return RiskEngine(
        config(**kw),
        state or make_state(clock),
        mode=mode,
        kill_switch=KillSwitch(None),
        guard=guard,
        allow_unverified=allow,
        clock=clock,
    )


def rejected(risk: RiskEngine, opp: Opportunity) -> Reason | None:
    return risk.check(opp).reason


# ----- the happy path and the order of checks -------------------------------------------


def test_a_sound_opportunity_is_approved() -> None:
    verdict = engine().check(cross())
    assert verdict.approved
    assert verdict.reason is None


def test_reason_names_are_stable() -> None:
    assert [r.value for r in CHECK_ORDER] == [
        "kill_switch",
        "key_not_proven",
        "stale_book",
        "order_rate",
        "invalid_leg",
        "no_valuation",
        "order_notional_cap",
        "symbol_notional_cap",
        "exposure_cap",
        "insufficient_balance",
    ]


def test_the_first_failing_check_names_the_rejection() -> None:
    clock = Clock()
    risk = engine(clock, max_order_notional=D(10))
    bad = cross(amount="0.000001")  # off the lot grid AND (were it valid) fine on caps
    assert rejected(risk, bad) is Reason.INVALID_LEG
    clock.now += 2000 * MS  # now stale as well: stale_book runs first
    assert rejected(risk, bad) is Reason.STALE_BOOK
    risk.kill_switch.trip("operator", "operator")
    assert rejected(risk, bad) is Reason.KILL_SWITCH
    assert risk.rejections == {Reason.INVALID_LEG: 1, Reason.STALE_BOOK: 1, Reason.KILL_SWITCH: 1}


# ----- kill_switch ------------------------------------------------------------------------


def test_kill_switch_rejects_until_reset() -> None:
    risk = engine()
    risk.kill_switch.trip("max_daily_loss", "risk")
    verdict = risk.check(cross())
    assert verdict.reason is Reason.KILL_SWITCH
    assert "max_daily_loss" in verdict.detail
    risk.kill_switch.reset()
    assert risk.check(cross()).approved


# ----- key_not_proven ---------------------------------------------------------------------

TRADE_ONLY = KeyPermissions(True, True, False, False, None)
CAN_WITHDRAW = KeyPermissions(True, True, True, False, None)
UNPROVABLE = KeyPermissions.unprovable("the permission call failed")


def guard_with(answers: dict[str, KeyPermissions]) -> PermissionGuard:
    guard = PermissionGuard(300, clock=lambda: 0.0, warn=lambda _: None)
    for venue, permissions in answers.items():

        async def probe(p: KeyPermissions = permissions) -> KeyPermissions:
            return p

        guard.register(venue, probe)
    return guard


def test_live_mode_needs_a_guard() -> None:
    with pytest.raises(ValueError, match="live mode needs a permission guard"):
        engine(mode="live")


async def test_live_mode_needs_every_venue_proven_trade_only() -> None:
    guard = guard_with({"a": TRADE_ONLY, "b": TRADE_ONLY})
    risk = engine(mode="live", guard=guard)
    verdict = risk.check(cross())
    assert verdict.reason is Reason.KEY_NOT_PROVEN
    assert "a: the key has not been proven" in verdict.detail
    await guard.check("a")
    assert "b: the key has not been proven" in risk.check(cross()).detail
    await guard.check("b")
    assert risk.check(cross()).approved


async def test_a_key_that_can_withdraw_is_never_proven() -> None:
    guard = guard_with({"a": TRADE_ONLY, "b": CAN_WITHDRAW})
    risk = engine(mode="live", guard=guard, allow_unverified=("b",))
    await guard.check("a")
    await guard.check("b")
    verdict = risk.check(cross())
    assert verdict.reason is Reason.KEY_NOT_PROVEN
    assert verdict.detail == "b: the key can withdraw funds"


async def test_an_unverified_key_passes_only_where_the_operator_allowed_it() -> None:
    guard = guard_with({"a": TRADE_ONLY, "b": UNPROVABLE})
    await guard.check("a")
    await guard.check("b")
    assert rejected(engine(mode="live", guard=guard), cross()) is Reason.KEY_NOT_PROVEN
    assert engine(mode="live", guard=guard, allow_unverified=("b",)).check(cross()).approved


async def test_a_proof_that_turns_unsafe_is_noticed_and_a_halted_guard_refuses() -> None:
    answers = {"a": TRADE_ONLY, "b": TRADE_ONLY}
    guard = guard_with(answers)
    risk = engine(mode="live", guard=guard)
    await guard.check("a")
    await guard.check("b")
    assert risk.check(cross()).approved  # the proofs are now cached by identity
    guard.register("b", _returning(CAN_WITHDRAW))
    await guard.check("b")
    assert risk.check(cross()).detail == "b: the key can withdraw funds"
    await guard.halt("b gained withdraw rights")
    assert "halted by the permission guard" in risk.check(cross()).detail


def _returning(permissions: KeyPermissions) -> Any:
    async def probe() -> KeyPermissions:
        return permissions

    return probe


async def test_an_unregistered_venue_is_not_proven() -> None:
    guard = guard_with({"a": TRADE_ONLY})
    await guard.check("a")
    risk = engine(mode="live", guard=guard)
    assert risk.check(cross()).detail == "b: no key registered with the permission guard"


def test_paper_mode_needs_no_keys() -> None:
    assert engine(mode="paper").check(cross()).approved
    assert engine(mode="backtest").check(cross()).approved


# ----- stale_book -------------------------------------------------------------------------


def test_a_book_at_the_age_limit_passes_and_one_ns_older_does_not() -> None:
    clock = Clock()
    risk = engine(clock, max_book_age_ms=500)
    clock.now = T0 + 500 * MS
    assert risk.check(cross()).approved
    clock.now += 1
    verdict = risk.check(cross())
    assert verdict.reason is Reason.STALE_BOOK
    assert verdict.detail == "a BTC/USDT: book is 500 ms old > max_book_age_ms 500"


def test_the_books_the_strategy_used_must_be_fresh_too() -> None:
    clock = Clock(T0 + 100 * MS)
    state = make_state(clock)
    risk = engine(clock, state, max_book_age_ms=500)
    old = BookStamp("b", "BTC/USDT", None, T0 - 401 * MS)  # the decision used an old book
    assert rejected(risk, cross(stamps=(old,))) is Reason.STALE_BOOK
    assert risk.check(cross(stamps=(replace(old, received_ns=T0 - 400 * MS),))).approved


def test_a_leg_without_a_book_is_stale() -> None:
    clock = Clock()
    state = make_state(clock)
    del state.books[("b", "BTC/USDT")]
    verdict = engine(clock, state).check(cross())
    assert verdict.reason is Reason.STALE_BOOK
    assert verdict.detail == "b BTC/USDT: no book yet"


# ----- order_rate -------------------------------------------------------------------------


def test_orders_per_second_per_venue_refill_with_time() -> None:
    clock = Clock()
    risk = engine(clock, max_orders_per_second=2)
    for _ in range(2):
        verdict, reservation = risk.admit(cross())
        assert verdict.approved
        assert reservation is not None
        risk.release(reservation)
    verdict = risk.check(cross())
    assert verdict.reason is Reason.ORDER_RATE
    assert verdict.detail == "a: 1 more order(s) would exceed 2 per second"
    clock.now += 499 * MS  # 0.998 of an order refilled
    assert rejected(risk, cross()) is Reason.ORDER_RATE
    clock.now += 1 * MS
    assert risk.check(cross()).approved


def test_a_burst_larger_than_the_rate_goes_only_from_a_full_bucket() -> None:
    clock = Clock()
    risk = engine(clock, max_orders_per_second=0.5, max_book_age_ms=60_000)
    three = Opportunity(
        "tri",
        tuple(Leg("a", "BTC/USDT", Side.BUY, D("0.001"), D("60001.00")) for _ in range(3)),
        D(1),
        D(1),
        "USDT",
        T0,
    )
    verdict, reservation = risk.admit(three)  # bucket full (1 token): the burst goes
    assert verdict.approved
    assert reservation is not None
    risk.release(reservation)
    clock.now += 5_999 * MS  # 1 - 3 tokens, plus 2.9995 refilled: just short of full
    assert rejected(risk, three) is Reason.ORDER_RATE
    clock.now += 1 * MS
    assert risk.check(three).approved


def test_unwind_orders_count_against_the_rate() -> None:
    clock = Clock()
    risk = engine(clock, max_orders_per_second=3)
    risk.record_orders("b", 3)
    assert rejected(risk, cross()) is Reason.ORDER_RATE
    clock.now += 334 * MS
    assert risk.check(cross()).approved


# ----- invalid_leg ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("opp", "detail"),
    [
        (cross(amount="0.010005"), "amount 0.010005 is not a multiple of the lot step 0.00001"),
        (cross(buy="60001.005"), "price 60001.005 is not a multiple of the tick 0.01"),
        (cross(amount="0.00008"), "notional 4.8000800 is below the minimum 5"),
        (cross(amount="0"), "amount must be positive"),
        (cross(amount="9000.00001"), "amount 9000.00001 is above the maximum 9000"),
    ],
)
def test_a_leg_off_its_market_rules_is_invalid(opp: Opportunity, detail: str) -> None:
    verdict = engine(
        max_order_notional=D(10**9), max_symbol_notional=D(10**9), max_open_exposure=D(10**9)
    ).check(opp)
    assert verdict.reason is Reason.INVALID_LEG
    assert verdict.detail.endswith(detail)


@pytest.mark.parametrize("amount", ["NaN", "Infinity", "sNaN", "1E+30"])
def test_a_leg_that_is_not_a_number_is_invalid_not_a_crash(amount: str) -> None:
    verdict = engine().check(cross(amount=amount))
    assert verdict.reason is Reason.INVALID_LEG
    assert verdict.detail.endswith(
        "is not a usable number (NaN, infinite, or beyond decimal precision)"
    )


def test_the_smallest_valid_leg_passes() -> None:
    # 0.00009 BTC x 60001 = 5.40009 >= min_notional 5 on the buy; same on the sell
    assert engine().check(cross(amount="0.00009")).approved


def test_an_unknown_market_or_no_leg_is_invalid() -> None:
    risk = engine()
    unknown = replace(cross(), legs=(Leg("c", "BTC/USDT", Side.BUY, D("0.01"), D("60001")),))
    clock_book = risk.state.books[("a", "BTC/USDT")]
    risk.state.books[("c", "BTC/USDT")] = clock_book
    assert risk.check(unknown).detail == "c BTC/USDT: market not loaded"
    assert risk.check(replace(cross(), legs=())).reason is Reason.INVALID_LEG


# ----- no_valuation -----------------------------------------------------------------------


def triangle(eth: str = "0.1") -> Opportunity:
    return Opportunity(
        "tri",
        (
            Leg("a", "ETH/BTC", Side.BUY, D(eth), D("0.05001")),
            Leg("a", "ETH/USDT", Side.SELL, D(eth), D("3000.00")),
        ),
        D(1),
        D(1),
        "USDT",
        T0,
    )


def test_a_leg_in_another_quote_is_valued_through_a_book() -> None:
    clock = Clock()
    state = make_state(clock)
    del state.books[("a", "BTC/USDT")], state.books[("b", "BTC/USDT")]
    risk = engine(clock, state)
    verdict = risk.check(triangle())
    assert verdict.reason is Reason.NO_VALUATION
    assert verdict.detail == "a ETH/BTC: no price for BTC in USDT"
    state.books[("a", "BTC/USDT")] = OrderBook("a", "BTC/USDT", [], [], received_ns=clock.now)
    assert rejected(risk, triangle()) is Reason.NO_VALUATION  # an empty book has no mid
    state.books[("b", "BTC/USDT")] = OrderBook(
        "b", "BTC/USDT", [(60000.0, 1.0)], [(60001.0, 1.0)], received_ns=clock.now
    )
    assert risk.check(triangle()).approved


def test_a_leg_in_another_quote_is_valued_by_its_sibling_leg_and_capped() -> None:
    # 2 ETH x 0.05001 BTC x 60000 USDT/BTC = 6001.2 USDT > 5000, valued by the BTC leg
    risk = engine(
        max_order_notional=D(6001), max_symbol_notional=D(10**6), max_open_exposure=D(10**6)
    )
    opp = Opportunity(
        "tri",
        (
            Leg("a", "BTC/USDT", Side.SELL, D("0.1"), D("60000.00")),
            Leg("a", "ETH/BTC", Side.BUY, D("2"), D("0.05001")),
            Leg("a", "ETH/USDT", Side.SELL, D("1"), D("3000.00")),
        ),
        D(1),
        D(1),
        "USDT",
        T0,
    )
    verdict = risk.check(opp)
    assert verdict.reason is Reason.ORDER_NOTIONAL_CAP
    assert verdict.detail.startswith("a ETH/BTC buy: notional 6001.2 USDT")


# ----- order_notional_cap -----------------------------------------------------------------


def test_order_notional_cap_is_inclusive() -> None:
    risk = engine(max_order_notional=D("600.01"))
    assert risk.check(cross(amount="0.01", buy="60001.00", sell="60001.00")).approved
    verdict = risk.check(cross(amount="0.01", buy="60001.00", sell="60001.01"))
    assert verdict.reason is Reason.ORDER_NOTIONAL_CAP
    assert verdict.detail == "b BTC/USDT sell: notional 600.0101 USDT > max_order_notional 600.01"


# ----- symbol_notional_cap and exposure_cap -----------------------------------------------


def test_symbol_notional_counts_what_is_in_flight() -> None:
    risk = engine(max_symbol_notional=D("2401"), max_open_exposure=D(10**6))
    first = risk.admit(cross())[1]  # 600.01 + 601.00 = 1201.01 in flight on BTC/USDT
    assert first is not None
    assert rejected(risk, cross()) is Reason.SYMBOL_NOTIONAL_CAP  # 2402.02 > 2401
    assert risk.check(cross(buy="60000.00", sell="59999.00")).approved  # 2401.00: at the cap
    risk.release(first)
    assert risk.check(cross()).approved


def test_open_exposure_counts_in_flight_and_stranded_residuals() -> None:
    risk = engine(max_open_exposure=D("2500"))
    first = risk.admit(cross())[1]
    assert first is not None
    assert risk.open_exposure == D("1201.01")
    assert risk.check(cross()).approved  # 2402.02 <= 2500
    risk.settle(first, "stranded", realized_pnl=D(0), residual_quote=D("99"))
    assert risk.open_exposure == D("99")
    second = risk.admit(cross())[1]
    assert second is not None
    verdict = risk.check(cross())  # 99 + 1201.01 + 1201.01 > 2500
    assert verdict.reason is Reason.EXPOSURE_CAP
    assert verdict.detail == "open 1300.01 + 1201.01 USDT > max_open_exposure 2500"
    risk.clear_residual(first)
    assert risk.check(cross()).approved


# ----- insufficient_balance ---------------------------------------------------------------


def test_a_buy_needs_quote_for_amount_times_limit_plus_the_taker_fee() -> None:
    need = D("0.01") * D("60001.00") * (1 + FEE)  # 600.61001
    clock = Clock()
    state = make_state(clock, balances={("a", "USDT"): need, ("b", "BTC"): D("0.01")})
    risk = engine(clock, state)
    assert risk.check(cross()).approved
    state.set_balance("a", "USDT", need - D("0.00000001"))
    verdict = risk.check(cross())
    assert verdict.reason is Reason.INSUFFICIENT_BALANCE
    assert verdict.detail == "a: needs 600.61001 USDT, has 600.61000999 free"


def test_a_sell_needs_the_base_amount() -> None:
    clock = Clock()
    state = make_state(clock, balances={("a", "USDT"): D(10**6), ("b", "BTC"): D("0.00999")})
    verdict = engine(clock, state).check(cross())
    assert verdict.reason is Reason.INSUFFICIENT_BALANCE
    assert verdict.detail == "b: needs 0.01 BTC, has 0.00999 free"


def test_legs_on_one_venue_and_asset_add_up() -> None:
    clock = Clock()
    state = make_state(clock, balances={("a", "USDT"): D(1000)})
    two_buys = Opportunity(
        "x",
        (
            Leg("a", "BTC/USDT", Side.BUY, D("0.008"), D("60000.00")),  # 480.48 with fee
            Leg("a", "ETH/USDT", Side.BUY, D("0.17"), D("3000.00")),  # 510.51 with fee
        ),
        D(1),
        D(1),
        "USDT",
        T0,
    )
    state.books[("a", "ETH/USDT")].received_ns = clock.now
    risk = engine(clock, state)
    assert risk.check(two_buys).approved  # 990.99 <= 1000
    state.set_balance("a", "USDT", D("990.98"))
    assert rejected(risk, two_buys) is Reason.INSUFFICIENT_BALANCE


def test_in_flight_opportunities_hold_their_balance() -> None:
    clock = Clock()
    state = make_state(clock, balances={("a", "USDT"): D(1000), ("b", "BTC"): D(1)})
    risk = engine(clock, state)
    first = risk.admit(cross())[1]
    assert first is not None
    assert risk.held("a", "USDT") == D("600.61001")
    verdict = risk.check(cross())
    assert verdict.reason is Reason.INSUFFICIENT_BALANCE
    assert verdict.detail.endswith("after in-flight holds")
    risk.settle(first, "filled")
    assert risk.held("a", "USDT") == 0
    assert risk.check(cross()).approved


# ----- settle: failures, daily loss, reset ------------------------------------------------


def test_consecutive_failures_trip_the_switch_and_a_fill_resets_the_count() -> None:
    risk = engine(max_consecutive_failures=3)
    for outcome in ("failed", "stranded", "filled", "failed", "unwound", "stranded"):
        reservation = risk.admit(cross())[1]
        assert reservation is not None
        risk.settle(reservation, outcome)
    assert risk.consecutive_failures == 2
    assert not risk.kill_switch.is_tripped
    reservation = risk.admit(cross())[1]
    assert reservation is not None
    risk.settle(reservation, "failed")
    assert risk.kill_switch.state.reason == "max_consecutive_failures"
    assert rejected(risk, cross()) is Reason.KILL_SWITCH
    risk.kill_switch.reset()
    assert risk.consecutive_failures == 0
    assert risk.check(cross()).approved


def test_daily_loss_trips_at_the_limit_and_a_new_utc_day_starts_afresh() -> None:
    clock = Clock(T0 - T0 % (86_400 * 10**9) + 86_400 * 10**9 - 10**9)  # 23:59:59 UTC
    state = make_state(clock)
    risk = engine(clock, state, max_daily_loss=D(10))
    for pnl in ("-6", "2", "-5.99"):
        reservation = risk.admit(cross())[1]
        assert reservation is not None
        risk.settle(reservation, "filled", realized_pnl=D(pnl))
    assert risk.realized_pnl_today == D("-9.99")
    assert not risk.kill_switch.is_tripped
    clock.now += 2 * 10**9  # past midnight UTC
    for book in state.books.values():
        book.received_ns = clock.now
    assert risk.realized_pnl_today == 0
    for pnl in ("-9.99", "-0.01"):
        reservation = risk.admit(cross())[1]
        assert reservation is not None
        risk.settle(reservation, "unwound", realized_pnl=D(pnl))
    assert risk.kill_switch.state.reason == "max_daily_loss"
    assert risk.kill_switch.state.source == "risk"
    risk.kill_switch.reset()
    assert risk.realized_pnl_today == 0  # an operator reset grants a fresh budget


def test_settling_twice_counts_once_and_release_is_idempotent() -> None:
    risk = engine(max_consecutive_failures=2)
    reservation = risk.admit(cross())[1]
    assert reservation is not None
    risk.settle(reservation, "failed", realized_pnl=D(-1))
    risk.settle(reservation, "failed", realized_pnl=D(-1))
    assert risk.consecutive_failures == 1
    assert risk.realized_pnl_today == -1
    assert risk.release(reservation) is False
    assert risk.open_exposure == 0
    assert risk.in_flight == ()


def test_reserve_checks_again_when_things_changed_since_the_check() -> None:
    risk = engine(max_symbol_notional=D("2500"))
    first = cross()
    assert risk.check(first).approved
    assert risk.admit(cross())[0].approved  # reserved in between: 1201.01 in flight
    assert risk.reserve(first).notional == D("1201.01")  # re-checked: 2402.02 still fits
    with pytest.raises(ValueError, match="symbol_notional_cap"):
        risk.reserve(cross())
    late = cross(amount="0.0001")  # 12.0101 more: 2414.03 fits
    assert risk.check(late).approved
    risk.kill_switch.trip("operator", "operator")  # between the check and the send
    with pytest.raises(ValueError, match="kill_switch"):
        risk.reserve(late)


def test_reserve_refuses_what_check_rejects() -> None:
    risk = engine()
    risk.kill_switch.trip("operator", "operator")
    with pytest.raises(ValueError, match="kill_switch"):
        risk.reserve(cross())


def test_snapshot_is_plain_data() -> None:
    risk = engine()
    risk.check(cross(amount="0.000015"))
    snap = risk.snapshot()
    assert snap["rejections"] == {"invalid_leg": 1}
    assert snap["kill_switch"]["tripped"] is False
    assert snap["open_exposure"] == "0"


# ----- properties -------------------------------------------------------------------------

lots = st.integers(min_value=1, max_value=10**6)  # in steps of 0.00001 BTC
ticks = st.integers(min_value=100_000, max_value=10_000_000)  # in steps of 0.01 USDT
fees = st.sampled_from([D(0), D("0.0001"), D("0.001"), D("0.0025")])


@settings(max_examples=150, deadline=None)
@given(lots, ticks, ticks, fees, st.integers(0, 10**9), st.integers(0, 10**7))
def test_balance_check_matches_the_exact_rule(
    lot: int, buy_tick: int, sell_tick: int, fee: Decimal, quote_cents: int, base_lots: int
) -> None:
    amount = D(lot) * D("0.00001")
    buy, sell = D(buy_tick) * D("0.01"), D(sell_tick) * D("0.01")
    quote, base = D(quote_cents) * D("0.01"), D(base_lots) * D("0.00001")
    clock = Clock()
    state = MarketState([market("a", taker_fee=fee), market("b", taker_fee=fee)], clock=clock)
    for venue in ("a", "b"):
        state.books[(venue, "BTC/USDT")] = OrderBook(venue, "BTC/USDT", [], [], received_ns=T0)
    state.set_balance("a", "USDT", quote)
    state.set_balance("b", "BTC", base)
    risk = engine(
        clock,
        state,
        max_order_notional=D(10**12),
        max_symbol_notional=D(10**12),
        max_open_exposure=D(10**12),
    )
    opp = cross(str(amount), str(buy), str(sell))
    verdict = risk.check(opp)
    if amount * buy < 5 or amount * sell < 5:
        assert verdict.reason is Reason.INVALID_LEG
        return
    covered = quote >= amount * buy * (1 + fee) and base >= amount
    assert verdict.approved is covered, verdict
    if not covered:
        assert verdict.reason is Reason.INSUFFICIENT_BALANCE


@settings(max_examples=150, deadline=None)
@given(lots, ticks, ticks, st.integers(1, 10**8))
def test_notional_caps_match_the_exact_rule(
    lot: int, buy_tick: int, sell_tick: int, cap_cents: int
) -> None:
    amount = D(lot) * D("0.00001")
    buy, sell = D(buy_tick) * D("0.01"), D(sell_tick) * D("0.01")
    order_cap = D(cap_cents) * D("0.01")
    symbol_cap = order_cap * D("1.5")
    clock = Clock()
    state = make_state(clock, balances={("a", "USDT"): D(10**12), ("b", "BTC"): D(10**9)})
    risk = engine(
        clock,
        state,
        max_order_notional=order_cap,
        max_symbol_notional=symbol_cap,
        max_open_exposure=D(10**12),
    )
    verdict = risk.check(cross(str(amount), str(buy), str(sell)))
    legs = (amount * buy, amount * sell)
    if min(legs) < 5:
        assert verdict.reason is Reason.INVALID_LEG
    elif max(legs) > order_cap:
        assert verdict.reason is Reason.ORDER_NOTIONAL_CAP
    elif sum(legs) > symbol_cap:
        assert verdict.reason is Reason.SYMBOL_NOTIONAL_CAP
    else:
        assert verdict.approved
