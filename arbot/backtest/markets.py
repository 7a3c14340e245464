"""Markets for a backtest: the grid from the settings, or inferred from the data.

A dataset holds books, not markets, so a backtest takes each market's grid from
``[backtest.venues.NAME] markets`` when the settings give it (``price_tick``,
``amount_step``, ``min_amount``, ``min_notional``, ``max_amount``), else infers it from
the recorded levels of that book:

* ``price_tick`` = 10^-d, d the most decimals of any recorded price;
* ``amount_step`` = 10^-d, d the most decimals of any recorded amount;
* no minimum amount or notional, no maximum.

Every recorded level then lies on the grid (a strategy can take any of them), and no
order is refused for a limit the data cannot tell. Decimals are counted on each
float's shortest repr (``27.1`` has one, ``1e-05`` five), over every file of the book
in the dataset (not only the replayed time range), on the distinct values only, at C
speed (Arrow's shortest digits; :func:`array_decimals`).
A real exchange's grid may be coarser: give it in the settings for realistic
rounding and minimums.

Fees are the venue's ``taker_fee`` / ``maker_fee`` from ``[venues.NAME]`` (unset: zero).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from arbot.feeds.dataset import DatasetError, symbol_dirname
from arbot.model import ZERO, Market, to_decimal

if TYPE_CHECKING:
    from arbot.config import Settings

_PART = re.compile(r"part-\d+\.parquet")
_PRICES = ("bid_px", "ask_px")
_AMOUNTS = ("bid_qty", "ask_qty")
_DEFAULT_STEP = Decimal("1e-8")  # a book with no level at all (nothing will trade on it)


def decimals(values: Iterable[float]) -> int:
    """The most decimal places among ``values`` (shortest repr; integers have none)."""
    most = 0
    for value in values:
        text = repr(value)
        dot = text.find(".")
        if dot >= 0 and "e" not in text:  # the common case, without building a Decimal
            places = len(text.rstrip("0")) - dot - 1
        else:
            exponent = to_decimal(value).normalize().as_tuple().exponent
            places = -exponent if isinstance(exponent, int) else 0
        most = max(most, places)
    return most


def infer_grid(root: Path, venue: str, symbol: str) -> tuple[Decimal, Decimal] | None:
    """``(price_tick, amount_step)`` from the recorded levels of one book; ``None`` if
    the dataset has no file of that book."""
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.compute as pc  # type: ignore[import-untyped]
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    folder = root / f"venue={venue}" / f"symbol={symbol_dirname(symbol)}"
    paths = sorted(p for p in folder.glob("date=*/part-*.parquet") if _PART.fullmatch(p.name))
    prices: list[Any] = []
    amounts: list[Any] = []
    for path in paths:
        try:
            metadata = pq.read_schema(path).metadata or {}
            if metadata.get(b"arbot.symbol", b"").decode() != symbol:
                continue
            table = pq.read_table(path, columns=[*_PRICES, *_AMOUNTS])
        except (pa.ArrowException, OSError) as exc:
            raise DatasetError(f"{path}: unreadable ({' '.join(str(exc).split())})") from exc
        prices.extend(_distinct(pc, table, name) for name in _PRICES)
        amounts.extend(_distinct(pc, table, name) for name in _AMOUNTS)
    if not prices:
        return None
    price_places = array_decimals(pc.unique(pa.concat_arrays(prices)))
    amount_places = array_decimals(pc.unique(pa.concat_arrays(amounts)))
    return Decimal(1).scaleb(-price_places), Decimal(1).scaleb(-amount_places)


def _distinct(pc: Any, table: Any, column: str) -> Any:
    return pc.unique(pc.list_flatten(table[column]).combine_chunks())


def array_decimals(values: Any) -> int:
    """:func:`decimals` of a float64 Arrow array, computed on Arrow's shortest round-trip
    digits (the same digits as ``repr``); the rare exponent forms go through
    :func:`decimals` itself."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if len(values) == 0:
        return 0
    text = pc.cast(values, pa.string())
    scientific = pc.match_substring(text, "e")
    most = 0
    if pc.any(scientific).as_py():
        most = decimals(pc.filter(values, scientific).to_pylist())
        text = pc.filter(text, pc.invert(scientific))
    dot = pc.find_substring(text, ".")
    places = pc.if_else(
        pc.greater_equal(dot, 0), pc.subtract(pc.subtract(pc.utf8_length(text), dot), 1), 0
    )
    return max(most, pc.max(places).as_py() or 0)


def build_markets(
    settings: Settings, books: Iterable[tuple[str, str]], root: Path
) -> dict[tuple[str, str], Market]:
    """The :class:`Market` of every ``(venue, symbol)`` book (see the module docstring)."""
    markets: dict[tuple[str, str], Market] = {}
    for venue, symbol in books:
        config = settings.venues[venue]
        grid = settings.backtest.venues.get(venue)
        given = grid.markets.get(symbol) if grid is not None else None
        base, _, quote = symbol.partition("/")
        fees = {"taker_fee": config.taker_fee or ZERO, "maker_fee": config.maker_fee or ZERO}
        if given is not None:
            markets[(venue, symbol)] = Market(
                venue,
                symbol,
                base,
                quote.split(":")[0],
                given.price_tick,
                given.amount_step,
                min_amount=given.min_amount,
                min_notional=given.min_notional,
                max_amount=given.max_amount,
                **fees,
            )
            continue
        inferred = infer_grid(root, venue, symbol)
        tick, step = inferred if inferred is not None else (_DEFAULT_STEP, _DEFAULT_STEP)
        markets[(venue, symbol)] = Market(
            venue, symbol, base, quote.split(":")[0], tick, step, **fees
        )
    return markets


__all__ = ["array_decimals", "build_markets", "decimals", "infer_grid"]
