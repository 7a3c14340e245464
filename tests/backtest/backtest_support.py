"""Helpers of the backtest tests: settings from TOML text, tiny datasets, the LINK set."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from arbot.config import Settings, load_settings
from arbot.feeds.book_feed import BookUpdate
from arbot.feeds.dataset import DatasetWriter

SHARED_DATA = Path(
    os.environ.get("ARBOT_TEST_SHARED_DATA")
    or Path(__file__).resolve().parents[3] / "shared" / "data"
)
LINK = "binance_huobi_linkusdt"
T0 = 1_700_000_000_000_000_000  # ns: 2023-11-14T22:13:20Z
MS = 1_000_000

AMPLE_RISK = """
[risk]
max_order_notional = 100000000
max_symbol_notional = 100000000
max_open_exposure = 100000000
max_orders_per_second = 1000
max_daily_loss = 100000000
"""


def settings_from(tmp_path: Path, text: str, name: str = "arbot.toml") -> Settings:
    """Settings from TOML text, with a SQLite store in ``tmp_path`` unless given."""
    if "database_url" not in text:
        text = f'database_url = "sqlite:///{tmp_path / "arbot.db"}"\n' + text
    path = tmp_path / name
    path.write_text(text)
    return load_settings(path)


def link_settings(
    tmp_path: Path, *, fee: str = "0", extra: str = "", name: str = "arbot.toml"
) -> Settings:
    """Binance and Huobi LINK/USDT, ample balances and limits, min_edge_bps = 0."""
    return settings_from(
        tmp_path,
        f"""
[venues.binance]
exchange = "binance"
symbols = ["LINK/USDT"]
taker_fee = {fee}
balances = {{ USDT = 100000000, LINK = 1000000 }}

[venues.huobi]
exchange = "htx"
symbols = ["LINK/USDT"]
taker_fee = {fee}
balances = {{ USDT = 100000000, LINK = 1000000 }}

[strategy]
name = "cross_exchange"
[strategy.params]
min_edge_bps = 0
{AMPLE_RISK}
{extra}
""",
        name,
    )


def pair_settings(
    tmp_path: Path, *, alpha: str = "", beta: str = "", risk: str = "", extra: str = ""
) -> Settings:
    """Venues ``alpha`` and ``beta`` on ABC/USDT, grid 0.01 / 0.01, zero fees; ``alpha``,
    ``beta``: more keys of their ``[backtest.venues.NAME]`` tables."""
    return settings_from(
        tmp_path,
        f"""
[venues.alpha]
exchange = "binance"
symbols = ["ABC/USDT"]
taker_fee = 0
balances = {{ USDT = 100000, ABC = 1000 }}

[venues.beta]
exchange = "okx"
symbols = ["ABC/USDT"]
taker_fee = 0
balances = {{ USDT = 100000, ABC = 1000 }}

[strategy]
name = "cross_exchange"
[strategy.params]
min_edge_bps = 0

{_risk(risk)}

[backtest.venues.alpha]
markets = {{ "ABC/USDT" = {{ price_tick = 0.01, amount_step = 0.01 }} }}
{alpha}
[backtest.venues.beta]
markets = {{ "ABC/USDT" = {{ price_tick = 0.01, amount_step = 0.01 }} }}
{beta}
{extra}
""",
    )


def _risk(overrides: str) -> str:
    """AMPLE_RISK with ``overrides`` (``key = value`` lines) replacing or adding keys."""
    lines = dict(
        line.split(" = ", 1) for line in (AMPLE_RISK + overrides).splitlines() if " = " in line
    )
    return "[risk]\n" + "\n".join(f"{k} = {v}" for k, v in lines.items())


def book(
    venue: str,
    at_ms: float,
    bids: list[tuple[float, float]],
    asks: list[tuple[float, float]],
    symbol: str = "ABC/USDT",
) -> BookUpdate:
    return BookUpdate(venue, symbol, bids, asks, None, T0 + round(at_ms * MS), None)


def write_books(root: Path, updates: Iterable[BookUpdate]) -> Path:
    with DatasetWriter(root) as writer:
        for update in sorted(updates, key=lambda u: u.received_ns):
            writer.write(update)
    return root


def quiet(venue: str, at_ms: float) -> BookUpdate:
    """A book on ``venue`` that crosses nothing (bid 99, ask 105)."""
    return book(venue, at_ms, [(99.0, 10.0)], [(105.0, 10.0)])


def link_csv_tops() -> dict[str, dict[str, tuple[Any, Any]]]:
    """Per timestamp, per venue file, (best bid, best ask) as Decimal from the raw CSVs."""
    import csv
    from decimal import Decimal

    tops: dict[str, dict[str, tuple[Any, Any]]] = {}
    for name in ("orderbook_bnc.csv", "orderbook_hb.csv"):
        with (SHARED_DATA / LINK / name).open() as handle:
            for row in csv.DictReader(handle):
                tops.setdefault(row["timestamp"], {})[name] = (
                    Decimal(row["b1"]),
                    Decimal(row["a1"]),
                )
    return tops
