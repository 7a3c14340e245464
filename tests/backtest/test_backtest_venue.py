"""``BacktestVenue`` and the replay loop on their own: requests are discrete events in
replay time, fills are made against the book at arrival, IOC/FOK as live."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import pytest
from backtest_support import MS, T0

from arbot.backtest.clock import EventQueue, ReplayClock, ReplayLoop, ReplayStalled
from arbot.backtest.latency import Latency
from arbot.backtest.venue import BacktestVenue
from arbot.model import Market, Order, OrderBook, OrderStatus, OrderType, Side, TimeInForce
from arbot.strategy.context import MarketState
from arbot.venues.errors import OrderNotFound, OrderRejected

SYMBOL = "ABC/USDT"
MARKET = Market("v", SYMBOL, "ABC", "USDT", Decimal("0.01"), Decimal("0.01"))


class Desk:
    """One venue on a replay clock, with a loop that fires the venue's events."""

    def __init__(self, latency_ms: float = 0.0, usdt: str = "1000") -> None:
        self.clock = ReplayClock(T0)
        self.events = EventQueue()
        self.state = MarketState([MARKET], clock=self.clock)
        self.set_book([(99.0, 5.0)], [(100.0, 1.0), (101.0, 1.0)])
        self.venue = BacktestVenue(
            "v",
            markets={SYMBOL: MARKET},
            balances={"USDT": Decimal(usdt), "ABC": Decimal(10)},
            state=self.state,
            clock=self.clock,
            events=self.events,
            order_latency=Latency(latency_ms),
        )

    def set_book(self, bids: list[tuple[float, float]], asks: list[tuple[float, float]]) -> None:
        self.state.books[("v", SYMBOL)] = OrderBook(
            "v", SYMBOL, bids, asks, received_ns=self.clock()
        )

    def at(self, ms: float, callback: Callable[[], None]) -> None:
        """Something the replay does at ``ms`` (like a moment), before venue events then."""
        self.events.call_at(T0 + round(ms * MS), callback)

    def _idle(self, timer_ns: int | None) -> bool:
        due = self.events.next_ns()
        if due is None or (timer_ns is not None and due > timer_ns):
            return False
        ns, callback = self.events.pop()
        self.clock.advance_to(ns)
        callback()
        return True

    def run(self, make: Callable[[], Awaitable[Any]]) -> Any:
        with asyncio.Runner(loop_factory=lambda: ReplayLoop(self.clock, self._idle)) as runner:
            return runner.run(make())  # type: ignore[arg-type]


def buy(amount: str, price: str, tif: TimeInForce = TimeInForce.IOC, cid: str = "c1") -> Order:
    return Order(cid, "v", SYMBOL, Side.BUY, OrderType.LIMIT, Decimal(amount), Decimal(price), tif)


def test_ioc_fills_what_the_book_has_within_the_limit_and_expires_the_rest() -> None:
    desk = Desk()
    answer = desk.run(lambda: desk.venue.create_order(buy("3", "101")))
    assert answer.status is OrderStatus.EXPIRED
    assert answer.filled == Decimal(2)
    assert answer.average_price == Decimal("100.5")
    fills = desk.run(lambda: desk.venue.fetch_order_fills(answer))
    assert [(f.price, f.amount) for f in fills] == [
        (Decimal(100), Decimal(1)),
        (Decimal(101), Decimal(1)),
    ]
    assert [f.trade_id for f in fills] == ["bt-t1", "bt-t2"]  # deterministic ids
    assert answer.exchange_order_id == "bt-1"


def test_fok_fills_completely_or_not_at_all() -> None:
    desk = Desk()
    short = desk.run(lambda: desk.venue.create_order(buy("3", "101", TimeInForce.FOK)))
    assert (short.status, short.filled) == (OrderStatus.EXPIRED, Decimal(0))
    whole = desk.run(lambda: desk.venue.create_order(buy("2", "101", TimeInForce.FOK, "c2")))
    assert (whole.status, whole.filled) == (OrderStatus.FILLED, Decimal(2))
    assert desk.venue.supports_time_in_force(TimeInForce.FOK)


def test_an_order_fills_against_the_book_at_arrival_and_its_answer_takes_as_long() -> None:
    desk = Desk(latency_ms=10)
    desk.at(4, lambda: desk.set_book([(99.0, 5.0)], [(100.5, 3.0)]))  # before arrival

    async def send() -> tuple[Order, int]:
        answer = await desk.venue.create_order(buy("2", "101"))
        return answer, desk.clock()

    answer, answered_ns = desk.run(send)
    assert answer.filled == Decimal(2)
    assert answer.average_price == Decimal("100.5")  # the book of 4 ms, not of 0 ms
    assert answer.updated_ms == (T0 + 10 * MS) // MS  # matched on arrival
    assert answered_ns == T0 + 20 * MS  # and answered one latency later


def test_a_refusal_is_answered_after_the_round_trip() -> None:
    desk = Desk(latency_ms=3, usdt="10")

    async def send() -> int:
        with pytest.raises(OrderRejected, match="insufficient balance"):
            await desk.venue.create_order(buy("1", "100"))
        return desk.clock()

    assert desk.run(send) == T0 + 6 * MS


def test_a_request_nobody_waits_for_still_executes_on_arrival() -> None:
    desk = Desk(latency_ms=10)

    async def send_and_give_up() -> Order:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(desk.venue.create_order(buy("1", "100")), 0.005)
        with pytest.raises(OrderNotFound):
            await desk.venue.fetch_order(buy("1", "100"))  # not there yet at 5 ms
        await asyncio.sleep(0.01)  # replay time: 15 ms
        return await desk.venue.fetch_order(buy("1", "100"))

    found = desk.run(send_and_give_up)
    assert (found.status, found.filled) == (OrderStatus.FILLED, Decimal(1))


def test_the_loop_sleeps_in_replay_time_and_never_waits_for_the_wall_clock() -> None:
    desk = Desk()

    async def nap() -> int:
        await asyncio.sleep(3600)
        return desk.clock()

    assert desk.run(nap) == T0 + 3600 * 10**9


def test_a_task_that_waits_for_nothing_that_can_come_is_a_stall_not_a_hang() -> None:
    desk = Desk()

    async def wait_forever() -> None:
        await asyncio.get_running_loop().create_future()

    with pytest.raises(ReplayStalled):
        desk.run(wait_forever)


def test_latency_draws_are_seeded_and_never_negative() -> None:
    def draws(seed: str, distribution: str) -> list[int]:
        latency = Latency(1.0, 2.0, distribution, seed=seed)
        return [latency.sample_ns() for _ in range(200)]

    for distribution in ("uniform", "normal", "exponential"):
        first = draws("1/v/order", distribution)
        assert first == draws("1/v/order", distribution)
        assert first != draws("2/v/order", distribution)
        assert min(first) >= 0
    assert set(draws("x", "uniform")) <= set(range(MS, 3 * MS + 1))
    assert Latency(2.5).sample_ns() == 2_500_000
    assert Latency(0).is_zero
