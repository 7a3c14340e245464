"""Balances per venue, kept from fills and checked against the exchange; inventory drift.

:class:`Portfolio` holds free and used amounts per (venue, asset). Fills move them at
once (:meth:`Portfolio.apply_fill`) so the next risk check sees what the last trade
spent; :meth:`Portfolio.refresh` replaces a venue's balances with the exchange's answer
(the exchange is the truth) and logs where the two disagreed; :meth:`refresh_forever`
does that on a timer. Every change is written through to the :class:`MarketState` the
strategies and the risk engine read (free amounts).

:meth:`Portfolio.drift_report` says how far each asset has moved from its target split
across venues and which manual transfers would restore it. arbot never moves funds
itself: the report is for the operator.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING, Any

from arbot.model import ZERO, Balance, Fill, Market, Side

if TYPE_CHECKING:
    from arbot.strategy.context import MarketState
    from arbot.venues.base import Venue


@dataclass(frozen=True, slots=True)
class BalanceDrift:
    """Where the exchange disagreed with what fills predicted (``exchange - expected``)."""

    venue: str
    asset: str
    expected: Decimal
    exchange: Decimal

    @property
    def difference(self) -> Decimal:
        return self.exchange - self.expected


@dataclass(frozen=True, slots=True)
class Transfer:
    """A transfer the operator could make by hand; arbot never makes it."""

    asset: str
    from_venue: str
    to_venue: str
    amount: Decimal

    def to_dict(self) -> dict[str, Any]:
        return {
            "asset": self.asset,
            "from": self.from_venue,
            "to": self.to_venue,
            "amount": _plain(self.amount),
        }


@dataclass(frozen=True, slots=True)
class VenueShare:
    """One venue's holding of one asset against its target."""

    venue: str
    amount: Decimal
    share: Decimal
    target_share: Decimal

    @property
    def deviation(self) -> Decimal:
        """``share - target_share``: positive holds too much, negative too little."""
        return self.share - self.target_share

    def to_dict(self) -> dict[str, Any]:
        return {
            "venue": self.venue,
            "amount": _plain(self.amount),
            "share": _plain(self.share),
            "target_share": _plain(self.target_share),
            "deviation": _plain(self.deviation),
        }


@dataclass(frozen=True, slots=True)
class AssetDrift:
    """One asset across venues, and the transfers that would restore its target split."""

    asset: str
    total: Decimal
    venues: tuple[VenueShare, ...]
    transfers: tuple[Transfer, ...]

    @property
    def max_deviation(self) -> Decimal:
        return max((abs(v.deviation) for v in self.venues), default=ZERO)

    def to_dict(self) -> dict[str, Any]:
        return {
            "asset": self.asset,
            "total": _plain(self.total),
            "max_deviation": _plain(self.max_deviation),
            "venues": [v.to_dict() for v in self.venues],
            "transfers": [t.to_dict() for t in self.transfers],
        }


@dataclass(frozen=True, slots=True)
class DriftReport:
    """Per asset: total, per-venue amount and share, target, deviation, transfers."""

    assets: tuple[AssetDrift, ...]

    @property
    def transfers(self) -> tuple[Transfer, ...]:
        return tuple(t for a in self.assets for t in a.transfers)

    def to_dict(self) -> dict[str, Any]:
        return {
            "note": "suggested manual transfers; arbot never moves funds itself",
            "assets": [a.to_dict() for a in self.assets],
        }


Targets = Mapping[str, Mapping[str, Decimal]]
"""Per asset, the share each venue should hold (``{"BTC": {"binance": 0.5, ...}}``);
shares are normalised to sum to one."""


class Portfolio:
    """Free and used balances per (venue, asset), written through to ``state``."""

    def __init__(self, state: MarketState, balances: Iterable[Balance] = ()) -> None:
        self.state = state
        self._balances: dict[tuple[str, str], Balance] = {}
        self._seen_trades: set[tuple[str, str]] = set()
        for balance in balances:
            self._put(balance)

    def _put(self, balance: Balance) -> None:
        self._balances[(balance.venue, balance.asset)] = balance
        self.state.set_balance(balance.venue, balance.asset, balance.free)

    def balance(self, venue: str, asset: str) -> Balance:
        return self._balances.get((venue, asset)) or Balance(venue, asset, ZERO)

    @property
    def balances(self) -> tuple[Balance, ...]:
        return tuple(self._balances.values())

    def total(self, asset: str) -> Decimal:
        """Free plus used, summed over venues."""
        return sum((b.total for b in self._balances.values() if b.asset == asset), ZERO)

    def _add(self, venue: str, asset: str, delta: Decimal) -> None:
        old = self.balance(venue, asset)
        self._put(Balance(venue, asset, old.free + delta, old.used))

    def apply_fill(self, fill: Fill, market: Market) -> bool:
        """Move balances by one execution; ``False`` if this trade was applied already.

        A buy adds ``amount`` base and spends ``amount x price`` quote; a sell the
        reverse. The fee comes off whichever asset it is charged in (quote, base, or a
        third one such as BNB).
        """
        if fill.trade_id:
            key = (fill.venue, fill.trade_id)
            if key in self._seen_trades:
                return False
            self._seen_trades.add(key)
        venue = fill.venue
        notional = fill.amount * fill.price
        if fill.side is Side.BUY:
            self._add(venue, market.base, fill.amount)
            self._add(venue, market.quote, -notional)
        else:
            self._add(venue, market.base, -fill.amount)
            self._add(venue, market.quote, notional)
        if fill.fee:
            self._add(venue, fill.fee_currency or market.quote, -fill.fee)
        return True

    def refresh(self, venue: str, balances: Mapping[str, Balance]) -> list[BalanceDrift]:
        """Take ``venue``'s balances from the exchange; return (and log) the disagreements.

        Assets we held that the exchange no longer lists become zero. The first answer
        from a venue we knew nothing about is the baseline, not a disagreement.
        """
        drifts: list[BalanceDrift] = []
        known = {asset for (v, asset) in self._balances if v == venue}
        for asset in sorted(known | set(balances)):
            expected = self.balance(venue, asset).total
            fresh = balances.get(asset) or Balance(venue, asset, ZERO)
            if known and fresh.total != expected:
                drifts.append(BalanceDrift(venue, asset, expected, fresh.total))
            self._put(Balance(venue, asset, fresh.free, fresh.used))
        for drift in drifts:
            _log(
                f"{venue} {drift.asset}: exchange says {drift.exchange}, fills predicted "
                f"{drift.expected} (difference {drift.difference})"
            )
        return drifts

    async def refresh_venue(self, venue: Venue) -> list[BalanceDrift]:
        return self.refresh(venue.name, await venue.fetch_balances())

    async def refresh_forever(self, venues: Iterable[Venue], interval: float) -> None:
        """Refresh every venue, then every ``interval`` seconds until cancelled.

        A venue that cannot answer is logged and asked again next round; cancellation
        is never swallowed.
        """
        from arbot.venues.errors import VenueError

        venues = list(venues)
        while True:
            for venue in venues:
                try:
                    await self.refresh_venue(venue)
                except VenueError as exc:
                    _log(f"{venue.name}: balance refresh failed: {exc}; retrying in {interval} s")
            await asyncio.sleep(interval)

    def drift_report(
        self, targets: Targets | None = None, *, min_deviation: Decimal = Decimal("0.01")
    ) -> DriftReport:
        """How far each asset is from its target split, and the transfers to restore it.

        Without a target for an asset, it should be split equally across the venues that
        hold it or list a market in it (a venue drained to zero still counts). Assets
        whose every venue is within ``min_deviation`` (a share, 0.01 = 1 point) of its
        target get no transfers.
        """
        targets = targets or {}
        venues_of: dict[str, set[str]] = {}
        for venue, asset in self._balances:
            venues_of.setdefault(asset, set()).add(venue)
        for market in self.state.markets.values():
            for asset in (market.base, market.quote):
                venues_of.setdefault(asset, set()).add(market.venue)
        for asset, split in targets.items():
            venues_of.setdefault(asset, set()).update(split)
        report = []
        for asset in sorted(venues_of):
            venues = sorted(venues_of[asset])
            amounts = {v: self.balance(v, asset).total for v in venues}
            total = sum(amounts.values(), ZERO)
            weights = _target_weights(venues, targets.get(asset))
            whole = sum(weights.values(), ZERO)
            rows = tuple(
                VenueShare(v, amounts[v], amounts[v] / total if total else ZERO, weights[v] / whole)
                for v in venues
            )
            transfers: tuple[Transfer, ...] = ()
            if total > 0 and any(abs(r.deviation) >= min_deviation for r in rows):
                # multiply before dividing: an equal split of 3 is 1 each, not 0.999...
                goals = {v: total * weights[v] / whole for v in venues}
                transfers = _transfers(asset, amounts, goals)
            report.append(AssetDrift(asset, total, rows, transfers))
        return DriftReport(tuple(report))


def _target_weights(venues: list[str], split: Mapping[str, Decimal] | None) -> dict[str, Decimal]:
    if not split:
        return dict.fromkeys(venues, Decimal(1))
    weights = {v: Decimal(split.get(v, ZERO)) for v in venues}
    if any(w < 0 for w in weights.values()):
        raise ValueError(f"target shares must not be negative: {dict(split)}")
    if sum(weights.values(), ZERO) <= 0:
        raise ValueError(f"target shares must add up to more than zero: {dict(split)}")
    return weights


TRANSFER_QUANTUM = Decimal("1e-8")
"""Suggested transfers are rounded down to this (a satoshi; finer than any withdrawal)."""


def _transfers(
    asset: str, amounts: dict[str, Decimal], goals: dict[str, Decimal]
) -> tuple[Transfer, ...]:
    """Largest surplus to largest deficit until balanced: at most ``venues - 1`` moves."""
    surplus = {v: amounts[v] - goals[v] for v in amounts}
    givers = sorted(((s, v) for v, s in surplus.items() if s > 0), reverse=True)
    takers = sorted(((-s, v) for v, s in surplus.items() if s < 0), reverse=True)
    moves: list[Transfer] = []
    gi = ti = 0
    give = givers[0][0] if givers else ZERO
    take = takers[0][0] if takers else ZERO
    while gi < len(givers) and ti < len(takers):
        amount = min(give, take)
        rounded = amount.quantize(TRANSFER_QUANTUM, ROUND_DOWN)
        if rounded > 0:
            moves.append(Transfer(asset, givers[gi][1], takers[ti][1], rounded))
        give -= amount
        take -= amount
        if give <= 0:
            gi += 1
            give = givers[gi][0] if gi < len(givers) else ZERO
        if take <= 0:
            ti += 1
            take = takers[ti][0] if ti < len(takers) else ZERO
    return tuple(moves)


def _plain(value: Decimal) -> str:
    """No exponent and no trailing zeros: ``50``, ``0.25``."""
    return f"{value.normalize():f}"


def _log(message: str) -> None:
    from loguru import logger

    logger.warning(message)
