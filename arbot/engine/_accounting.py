"""Positions, residuals, realised PnL and outcomes, computed from executions alone.

Shared by the executor (as it trades) and reconciliation (after a restart), so both
record the same numbers for the same fills.

Conventions
-----------
* **Positions are gross.** A buy of ``a`` base at ``p`` on ``BASE/QUOTE`` changes the
  venue's ``BASE`` by ``+a`` and its ``QUOTE`` by ``-a*p``; a sell the reverse. Fees
  are *costs* (below), not position changes, so a cross-exchange trade whose legs
  traded equal amounts is flat although the fee in base left the buyer a little short.
* **Flat** means the net change of every asset other than the opportunity's quote,
  summed over all venues, is zero. A cross-exchange trade moves inventory between
  venues (``+a`` on one, ``-a`` on the other): that is flat.
* **Residual**: a non-zero net change, attributed to the venues whose own change has
  the same sign (in order of appearance, each up to its own change). **Dust** is a
  residual too small to trade on any ``ASSET/QUOTE`` market the executor knows (below
  the lot, the minimum amount or the minimum notional); it is reported, but does not
  make an execution ``stranded``.
* **Realised PnL** in the opportunity's quote currency ``Q``::

      pnl = (net change of Q) - (fees converted to Q) + sum(residual(a) * cost_basis(a))

  The last term carries an unclosed position at cost, so the PnL is what was realised
  on the part that was closed. ``cost_basis(a)`` is the volume-weighted price of the
  ``a/Q`` executions on the side that created the residual (buys for a long residual),
  else of all ``a/Q`` executions, else a price derived through the execution's other
  markets (``a/X`` times the price of ``X``; direct ``a/Q`` prices are preferred).
  Written out, the weighted price is ``sum(amount * price) / sum(amount)``, computed in
  that order.
* **Fees to Q**: a fee in ``Q`` counts as is; a fee in the fill's base on a ``BASE/Q``
  market converts at that fill's price; a fee in any other currency converts at the
  price of that currency derived from the execution's own fills (as for cost basis).
  A fee in a currency with no such price is left out of the PnL and reported in
  ``fees_excluded``.

Outcomes (the strings of ``OpportunityRow.outcome``):

* ``failed``: nothing filled.
* ``filled``: flat (every leg filled, or the legs filled to the same smaller size),
  no unwind order filled.
* ``unwound``: flat thanks to unwind orders (partial + unwound, or failed + unwound).
* ``stranded``: a residual other than dust remains.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from arbot.model import ZERO, Fill, Market, Side


class Outcome(StrEnum):
    """How an execution ended (stored in ``opportunities.outcome``)."""

    FILLED = "filled"
    UNWOUND = "unwound"
    STRANDED = "stranded"
    FAILED = "failed"
    UNKNOWN = "unknown"
    """Not stored: an order's fate is still unknown; reconciliation settles it."""


@dataclass(frozen=True, slots=True)
class Execution:
    """One execution (a fill, or an order's filled amount when its fills are missing)."""

    venue: str
    symbol: str
    side: Side
    amount: Decimal
    price: Decimal
    unwind: bool = False


DustTest = Callable[[str, Decimal, Decimal | None], bool]
"""``(asset, signed residual amount, cost basis in quote or None) -> is it dust?``"""


@dataclass(frozen=True, slots=True)
class Summary:
    outcome: Outcome
    realised_pnl_quote: Decimal
    residual: dict[tuple[str, str], Decimal]
    dust: frozenset[str] = frozenset()
    fees_excluded: dict[str, Decimal] = field(default_factory=dict)
    unvalued: dict[str, Decimal] = field(default_factory=dict)
    """Residual assets without any price in quote (left out of the PnL)."""


def split_symbol(symbol: str) -> tuple[str, str]:
    base, _, quote = symbol.partition("/")
    return base, quote.split(":")[0]


def from_fill(fill: Fill, *, unwind: bool = False) -> Execution:
    return Execution(fill.venue, fill.symbol, fill.side, fill.amount, fill.price, unwind)


def changes(executions: Iterable[Execution]) -> dict[tuple[str, str], Decimal]:
    """Gross change per (venue, asset), in order of first appearance."""
    out: dict[tuple[str, str], Decimal] = {}
    for ex in executions:
        base, quote = split_symbol(ex.symbol)
        sign = 1 if ex.side is Side.BUY else -1
        out[(ex.venue, base)] = out.get((ex.venue, base), ZERO) + sign * ex.amount
        out[(ex.venue, quote)] = out.get((ex.venue, quote), ZERO) - sign * ex.amount * ex.price
    return out


def net_by_asset(executions: Iterable[Execution]) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for (_, asset), amount in changes(executions).items():
        out[asset] = out.get(asset, ZERO) + amount
    return out


def excess(executions: Iterable[Execution], quote: str) -> dict[str, Decimal]:
    """Net change of every asset other than ``quote`` that is not flat."""
    return {a: n for a, n in net_by_asset(executions).items() if a != quote and n != 0}


def residual(executions: Iterable[Execution], quote: str) -> dict[tuple[str, str], Decimal]:
    """Each non-flat asset's net change, attributed to the venues that hold it."""
    executions = list(executions)
    per_venue = changes(executions)
    out: dict[tuple[str, str], Decimal] = {}
    for asset, net in excess(executions, quote).items():
        left = net
        for (venue, held), change in per_venue.items():
            if held != asset or left == 0 or (change > 0) != (left > 0) or change == 0:
                continue
            part = min(abs(change), abs(left)) * (1 if left > 0 else -1)
            out[(venue, asset)] = part
            left -= part
        if left:  # no venue's own change has that sign (cannot happen with real trades)
            out[("", asset)] = left
    return out


def _vwap(executions: Iterable[Execution]) -> Decimal | None:
    amount = ZERO
    cost = ZERO
    for ex in executions:
        amount += ex.amount
        cost += ex.amount * ex.price
    return cost / amount if amount else None


def prices_in_quote(executions: Iterable[Execution], quote: str) -> dict[str, Decimal]:
    """A price in ``quote`` for every asset the executions let us value."""
    executions = list(executions)
    prices: dict[str, Decimal] = {quote: Decimal(1)}
    by_market: dict[tuple[str, str], list[Execution]] = {}
    for ex in executions:
        by_market.setdefault(split_symbol(ex.symbol), []).append(ex)
    for (base, other), group in by_market.items():  # direct markets first
        vwap = _vwap(group)
        if other == quote and vwap:
            prices[base] = vwap
        elif base == quote and vwap:
            prices.setdefault(other, 1 / vwap)
    for _ in range(4):  # then chains of markets, at most this long
        grew = False
        for (base, other), group in by_market.items():
            vwap = _vwap(group)
            if vwap is None or vwap == 0:
                continue
            if base not in prices and other in prices:
                prices[base] = vwap * prices[other]
                grew = True
            elif other not in prices and base in prices:
                prices[other] = prices[base] / vwap
                grew = True
        if not grew:
            break
    return prices


def cost_basis(
    executions: Iterable[Execution], quote: str, asset: str, long: bool
) -> Decimal | None:
    """The price in ``quote`` at which a residual of ``asset`` was acquired (see module doc)."""
    executions = list(executions)
    direct = [ex for ex in executions if split_symbol(ex.symbol) == (asset, quote)]
    side = Side.BUY if long else Side.SELL
    price = _vwap(ex for ex in direct if ex.side is side) or _vwap(direct)
    if price is not None:
        return price
    return prices_in_quote(executions, quote).get(asset)


def fee_in_quote(fill: Fill, quote: str, prices: dict[str, Decimal]) -> Decimal | None:
    """``fill``'s fee in ``quote``; ``None`` when its currency cannot be valued."""
    if fill.fee == 0:
        return ZERO
    currency = fill.fee_currency
    base, fill_quote = split_symbol(fill.symbol)
    if currency == quote:
        return fill.fee
    if currency == base and fill_quote == quote:
        return fill.fee * fill.price
    price = prices.get(currency)
    return None if price is None else fill.fee * price


def summarise(
    fills: Iterable[Fill],
    quote: str,
    *,
    unwind_ids: Iterable[str] = (),
    extra: Iterable[Execution] = (),
    dust: DustTest | None = None,
) -> Summary:
    """Outcome, realised PnL and residual of one execution from its fills.

    ``unwind_ids``: client order ids of the unwind orders. ``extra``: executions known
    from orders whose fills could not be fetched (they count for positions, not PnL).
    """
    fills = list(fills)
    unwinds = set(unwind_ids)
    executions = [from_fill(f, unwind=f.client_order_id in unwinds) for f in fills]
    executions += list(extra)
    if not executions:
        return Summary(Outcome.FAILED, ZERO, {})
    prices = prices_in_quote(executions, quote)
    pnl = net_by_asset(executions).get(quote, ZERO)
    fees_excluded: dict[str, Decimal] = {}
    for fill in fills:
        fee = fee_in_quote(fill, quote, prices)
        if fee is None:
            fees_excluded[fill.fee_currency] = fees_excluded.get(fill.fee_currency, ZERO) + fill.fee
        else:
            pnl -= fee
    unvalued: dict[str, Decimal] = {}
    dusty: set[str] = set()
    for asset, amount in excess(executions, quote).items():
        basis = cost_basis(executions, quote, asset, amount > 0)
        if basis is None:
            unvalued[asset] = amount
        else:
            pnl += amount * basis
        if dust is not None and dust(asset, amount, basis):
            dusty.add(asset)
    left = residual(executions, quote)
    if any(asset not in dusty for _, asset in left):
        outcome = Outcome.STRANDED
    elif any(ex.unwind for ex in executions):
        outcome = Outcome.UNWOUND
    else:
        outcome = Outcome.FILLED
    return Summary(outcome, pnl, left, frozenset(dusty), fees_excluded, unvalued)


def is_dust(markets: Sequence[Market], amount: Decimal, basis: Decimal | None) -> bool:
    """``amount`` of an asset is too small for every one of ``markets`` at ``basis``
    (below its minimum amount or notional once rounded); no market at all: not dust."""
    if not markets or basis is None:
        return False
    side = Side.SELL if amount > 0 else Side.BUY
    return all(
        m.order_problem(m.round_amount(abs(amount)), m.round_limit_price(basis, side)) is not None
        for m in markets
    )
