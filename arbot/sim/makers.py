"""Simulated market makers: a seeded price process shared by every venue.

Each asset has a fair value in USD that follows a geometric random walk; a symbol's
fair price is ``base / quote`` (so BTC/USDT, ETH/USDT and ETH/BTC stay consistent and
triangles close). Each venue quotes around its own view of that price:

    venue mid = fair(t - venue latency) · (1 + offset)

where ``offset`` is a mean-reverting (Ornstein-Uhlenbeck) noise per venue and symbol
that now and then jumps (a *dislocation*: exponentially distributed size, mean
``dislocation_bps``) and decays back. Dislocations are what make cross-exchange and
triangular opportunities appear
and vanish on their own. Everything is driven by explicit times and seeded random
generators, so the same seed and the same sequence of step times give the same books.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from collections import deque
from dataclasses import dataclass

from arbot.sim.venue import SimMarket, SimVenue

USD_STABLE = frozenset({"USDT", "USDC", "USD", "FDUSD"})


@dataclass(frozen=True)
class MakerParams:
    """How the makers of one venue quote."""

    levels: int = 25
    half_spread_bps: float = 1.0
    level_gap_bps: float = 0.5
    level_notional_usd: float = 15_000.0
    latency_ms: float = 0.0
    noise_bps: float = 0.5
    reversion_per_s: float = 0.8
    dislocation_every_s: float = 45.0
    dislocation_bps: float = 15.0


class FairValues:
    """USD fair values per asset: a seeded geometric random walk, kept for a few seconds
    so a venue with latency can look back in time."""

    HISTORY_S = 10.0
    RESOLUTION_S = 0.01

    def __init__(self, prices: dict[str, float], volatility: dict[str, float], seed: int) -> None:
        self._value = dict(prices)
        self._volatility = volatility
        self._rng = {a: random.Random(f"{seed}:fair:{a}") for a in prices}
        self._time: float | None = None
        self._history: dict[str, deque[tuple[float, float]]] = {a: deque() for a in prices}
        self._overrides: dict[str, float] = {}

    def assets(self) -> list[str]:
        return list(self._value)

    def advance(self, now: float) -> None:
        """Move every asset's fair value forward to ``now`` (seconds), in steps of at most
        :attr:`RESOLUTION_S`, so a venue's latency looks back at the right value."""
        if self._time is None:
            self._time = now
            for asset, value in self._value.items():
                self._history[asset].append((now, value))
            return
        while now - self._time > 1e-9:
            dt = min(self.RESOLUTION_S, now - self._time)
            self._time += dt
            for asset, old in self._value.items():
                sigma = self._volatility.get(asset, 0.0005)
                shock = self._rng[asset].gauss(0.0, 1.0)
                value = old * math.exp(sigma * math.sqrt(dt) * shock - 0.5 * sigma * sigma * dt)
                self._value[asset] = value
                history = self._history[asset]
                history.append((self._time, value))
                while history[0][0] < self._time - self.HISTORY_S:
                    history.popleft()

    def usd(self, asset: str, at: float | None = None) -> float:
        if asset in USD_STABLE:
            return 1.0
        if at is None or self._time is None or at >= self._time:
            return self._value[asset]
        history = self._history[asset]
        index = bisect_right(history, at, key=lambda item: item[0]) - 1
        return (
            history[index][1] if index >= 0 else (history[0][1] if history else self._value[asset])
        )

    def set_usd(self, asset: str, value: float) -> None:
        """Move an asset's fair value at once (control API: 'move a price')."""
        self._value[asset] = value
        if self._time is not None:
            self._history[asset].append((self._time, value))

    def price(self, market: SimMarket, at: float | None = None) -> float:
        return self.usd(market.base, at) / self.usd(market.quote, at)


class VenueMakers:
    """Quotes a ladder on every symbol of one venue, one symbol per step, round robin."""

    def __init__(self, venue: SimVenue, fair: FairValues, params: MakerParams, seed: int) -> None:
        self.venue = venue
        self.fair = fair
        self.params = params
        self._rng = random.Random(f"{seed}:makers:{venue.name}")
        self._symbols = list(venue.markets)
        self._next = 0
        self._offset = dict.fromkeys(self._symbols, 0.0)
        self._offset_time = dict.fromkeys(self._symbols, -1.0)
        self._ladders: dict[str, tuple[dict[int, int], dict[int, int]]] = {}

    def step(self, now: float) -> None:
        """Requote symbols round robin at time ``now`` until one publishes a diff.

        A requote that changes nothing publishes nothing; moving on keeps one step equal
        to one published book update, which is what ``updates_per_second`` promises.
        """
        for _ in range(len(self._symbols)):
            symbol = self._symbols[self._next]
            self._next = (self._next + 1) % len(self._symbols)
            before = self.venue.update_ids[symbol]
            self.requote(symbol, now)
            if self.venue.update_ids[symbol] != before:
                return

    def requote(self, symbol: str, now: float) -> None:
        market = self.venue.markets[symbol]
        self.fair.advance(now)
        fair = self.fair.price(market, now - self.params.latency_ms / 1000.0)
        mid = fair * (1.0 + self._advance_offset(symbol, now))
        bids, asks = self._ladder(market, mid)
        self.venue.set_maker_ladder(symbol, bids, asks)

    def dislocate(self, symbol: str, bps: float) -> None:
        """Push this venue's quotes for ``symbol`` away from fair by ``bps`` (decays back)."""
        self._offset[symbol] += bps / 10_000.0

    def _advance_offset(self, symbol: str, now: float) -> float:
        p = self.params
        last = self._offset_time[symbol]
        dt = 0.0 if last < 0 else max(0.0, now - last)
        self._offset_time[symbol] = now
        x = self._offset[symbol]
        if dt > 0:
            decay = math.exp(-p.reversion_per_s * dt)
            spread = p.noise_bps / 10_000.0 * math.sqrt(1.0 - decay * decay)
            x = x * decay + spread * self._rng.gauss(0.0, 1.0)
            if p.dislocation_every_s > 0 and self._rng.random() < dt / p.dislocation_every_s:
                size = self._rng.expovariate(1.0) * p.dislocation_bps  # mean dislocation_bps
                x += self._rng.choice((-1.0, 1.0)) * size / 10_000.0
        self._offset[symbol] = x
        return x

    def _ladder(self, market: SimMarket, mid: float) -> tuple[dict[int, int], dict[int, int]]:
        """Target maker levels (ticks → lots), reusing sizes of unchanged prices."""
        p = self.params
        tick = float(market.tick)
        lot = float(market.lot)
        half = max(tick, mid * p.half_spread_bps / 10_000.0)
        best_bid = math.floor((mid - half) / tick)
        best_ask = max(best_bid + 1, math.ceil((mid + half) / tick))
        gap = max(1, round(mid * p.level_gap_bps / 10_000.0 / tick))
        quote_usd = self.fair.usd(market.quote)
        old_bids, old_asks = self._ladders.get(market.symbol, ({}, {}))
        min_lots = max(1, math.ceil(float(market.min_amount) / lot))
        bids: dict[int, int] = {}
        asks: dict[int, int] = {}
        # The touch follows the mid; deeper levels sit on a fixed grid of ``gap`` ticks (as
        # real makers quote round prices), so a small move changes the top, not every level.
        bid_grid = (best_bid - 1) // gap * gap
        ask_grid = (best_ask // gap + 1) * gap
        for i in range(p.levels):
            depth_factor = 1.0 + 0.15 * i
            for ladder, old, price in (
                (bids, old_bids, best_bid if i == 0 else bid_grid - (i - 1) * gap),
                (asks, old_asks, best_ask if i == 0 else ask_grid + (i - 1) * gap),
            ):
                if price <= 0:
                    continue
                size = old.get(price)
                if size is None or self._rng.random() < 0.08:
                    notional = (
                        p.level_notional_usd * depth_factor * self._rng.lognormvariate(0, 0.5)
                    )
                    base_amount = notional / quote_usd / (price * tick)
                    size = max(min_lots, int(base_amount / lot))
                ladder[price] = size
        self._ladders[market.symbol] = (bids, asks)
        return bids, asks
