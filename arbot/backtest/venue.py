"""``BacktestVenue``: a simulated account on replayed books, with order latency.

It is a :class:`~arbot.venues.paper.PaperVenue` (same account rules, same refusals,
same pure fill model :func:`~arbot.venues.fills.fill_order`, same rule that liquidity
taken from one book state is not taken again before the next update) whose books are
the replay's (the engine's :class:`~arbot.strategy.context.MarketState`), whose clock
is the replay clock, and whose requests take time:

* **Orders and cancels are discrete events.** :meth:`create_order` sent at replay time
  ``t`` reaches the venue at ``t + d1`` (one draw of the venue's order latency) and is
  matched there, against the book *as it is at arrival*: the replay applies every
  update visible up to ``t + d1`` (moments first at equal times) before the arrival
  fires. The answer reaches the engine at ``t + d1 + d2`` (another draw). A request
  whose caller stopped waiting (the executor gave up after ``order_timeout_s``) still
  arrives and executes, as a real one would; the executor then learns its fate by
  asking (:meth:`fetch_order`).
* **Reads answer at once** from the venue's current state: :meth:`fetch_order`,
  :meth:`fetch_order_fills`, :meth:`fetch_open_orders`, :meth:`fetch_balances`,
  :meth:`fetch_order_book`.
* **Fills** walk the book within the limit at arrival, on the lot grid, with the
  market's taker fee in ``fee_asset``; a short book gives a partial fill (IOC: the
  rest expires; FOK: nothing fills; GTC: the rest rests, never filled later: there is
  no queue model). The book is not changed by our fills (no market impact), except
  that the same book state cannot be taken twice; the next update brings fresh levels.
  Every time in force is supported.
* **Ids** are deterministic: exchange order ids ``{prefix}{n}`` and trade ids
  ``{prefix}t{n}``, counted per venue.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from decimal import Decimal

from arbot.backtest.clock import EventQueue, ReplayClock
from arbot.backtest.latency import Latency
from arbot.model import Market, Order, TimeInForce
from arbot.strategy.context import MarketState
from arbot.venues.errors import VenueError
from arbot.venues.fills import FeeAsset
from arbot.venues.paper import PaperVenue


class BacktestVenue(PaperVenue):
    """One simulated account on replayed books; see the module docstring.

    Parameters:
        name: the venue's name (in the settings and in the dataset).
        markets: its markets by symbol (grid, limits, fees).
        balances: starting free balance per asset.
        state: the engine's market state (the replayed books).
        clock: the replay clock.
        events: the replay's event queue (arrivals and answers are scheduled there).
        order_latency: one draw per leg of a request (to the venue, and back).
        fee_asset: which asset taker fees are charged in.
        id_prefix: prefix of exchange order ids and trade ids (make it unique per run
            when runs share a store: fills are unique per venue and trade id).
    """

    def __init__(
        self,
        name: str,
        *,
        markets: Mapping[str, Market],
        balances: Mapping[str, Decimal],
        state: MarketState,
        clock: ReplayClock,
        events: EventQueue,
        order_latency: Latency | None = None,
        fee_asset: FeeAsset = FeeAsset.RECEIVED,
        id_prefix: str = "bt-",
    ) -> None:
        books = state.books
        super().__init__(
            name,
            markets=markets,
            balances=balances,
            book_source=lambda symbol: books.get((name, symbol)),
            clock=clock,
            fee_asset=fee_asset,
            id_prefix=id_prefix,
        )
        self.events = events
        self.order_latency = order_latency or Latency()
        self.orders_at_once = self.order_latency.is_zero
        self.requests = 0
        """Orders and cancels sent to this venue."""

    def supports_time_in_force(self, time_in_force: TimeInForce) -> bool:
        return True

    async def create_order(self, order: Order) -> Order:
        return await self._request(lambda: self._create(order))

    async def cancel_order(self, order: Order) -> Order:
        return await self._request(lambda: self._cancel(order))

    async def _request(self, act: Callable[[], Order]) -> Order:
        """Run ``act`` at arrival time; its answer (or refusal) comes back one draw later."""
        self.requests += 1
        latency = self.order_latency
        if latency.is_zero:
            # Arrival and answer at the same instant: nothing can happen in between (the
            # moment at this time is applied already, and requests sent now would arrive
            # after this one in the event queue too), so run it now.
            return act()
        answer: asyncio.Future[Order] = asyncio.get_running_loop().create_future()
        events = self.events
        clock = self.clock

        def arrive() -> None:
            result: Order | None = None
            error: VenueError | None = None
            try:
                result = act()
            except VenueError as exc:  # refused, as the exchange would answer
                error = exc

            def back() -> None:
                if answer.cancelled():
                    return
                if error is not None:
                    answer.set_exception(error)
                else:
                    assert result is not None
                    answer.set_result(result)

            events.call_at(clock() + latency.sample_ns(), back)

        events.call_at(clock() + latency.sample_ns(), arrive)
        return await answer


__all__ = ["BacktestVenue"]
