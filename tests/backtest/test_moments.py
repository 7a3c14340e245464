"""The replay: moments, market-data latency, time windows; market grids from the data."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from backtest_support import MS, T0, book, pair_settings, settings_from, write_books
from hypothesis import given, settings
from hypothesis import strategies as st

from arbot.backtest.latency import Latency
from arbot.backtest.markets import array_decimals, build_markets, decimals, infer_grid
from arbot.backtest.replay import moments, updates

BOOKS = [("alpha", "ABC/USDT"), ("beta", "ABC/USDT")]


def data(tmp_path: Path) -> Path:
    return write_books(
        tmp_path / "books",
        [
            book("beta", 0, [(99.0, 1.0)], [(100.0, 1.0)]),
            book("alpha", 0, [(99.5, 1.0)], [(100.5, 1.0)]),
            book("alpha", 1, [(99.6, 1.0)], [(100.5, 1.0)]),
            book("alpha", 2, [(99.7, 1.0)], [(100.5, 1.0)]),
            book("beta", 2, [(99.1, 1.0)], [(100.0, 1.0)]),
        ],
    )


def shape(found: list[object]) -> list[tuple[float, list[str]]]:
    return [((m.ns - T0) / MS, [u.venue for u in m.updates]) for m in found]  # type: ignore[attr-defined]


def test_updates_received_together_are_one_moment_in_the_given_venue_order(
    tmp_path: Path,
) -> None:
    root = data(tmp_path)
    found = list(moments(updates(root, BOOKS)))
    assert shape(found) == [(0, ["alpha", "beta"]), (1, ["alpha"]), (2, ["alpha", "beta"])]
    assert shape(list(moments(updates(root, BOOKS[::-1]))))[0] == (0, ["beta", "alpha"])


def test_a_time_window_keeps_start_and_drops_end(tmp_path: Path) -> None:
    found = list(moments(updates(data(tmp_path), BOOKS, start_ns=T0 + MS, end_ns=T0 + 2 * MS)))
    assert shape(found) == [(1, ["alpha"])]


def test_data_latency_delays_a_venue_and_the_engine_sees_the_visible_time(tmp_path: Path) -> None:
    delay = {"beta": Latency(1.5)}
    found = list(moments(updates(data(tmp_path), BOOKS, data_latency=delay)))
    assert shape(found) == [
        (0, ["alpha"]),
        (1, ["alpha"]),
        (1.5, ["beta"]),
        (2, ["alpha"]),
        (3.5, ["beta"]),
    ]
    beta = found[2].updates[0]
    assert beta.received_ns == T0 + 1_500_000  # visible time
    assert beta.bids == [(99.0, 1.0)]


def test_jitter_never_reorders_a_venue_and_is_seeded(tmp_path: Path) -> None:
    root = write_books(
        tmp_path / "many",
        [book("alpha", i * 0.1, [(99.0, 1.0)], [(100.0 + i, 1.0)]) for i in range(200)],
    )

    def replay(seed: str) -> list[tuple[int, float]]:
        jitter = {"alpha": Latency(0.0, 5.0, "exponential", seed=seed)}
        return [
            (u.received_ns, u.asks[0][0]) for u in updates(root, BOOKS[:1], data_latency=jitter)
        ]

    first = replay("s")
    assert [ask for _, ask in first] == [100.0 + i for i in range(200)]  # recorded order
    assert [ns for ns, _ in first] == sorted(ns for ns, _ in first)
    assert first == replay("s")
    assert first != replay("t")


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.floats(allow_nan=False, allow_infinity=False)
        | st.decimals(min_value=0, max_value=10**7, places=8).map(float),
        max_size=40,
    )
)
def test_decimals_at_c_speed_equal_the_repr_count(values: list[float]) -> None:
    """The grid is inferred on Arrow's digits; they must count like ``repr`` does."""
    import pyarrow as pa

    assert array_decimals(pa.array(values, pa.float64())) == decimals(values)


def test_grids_are_inferred_from_the_finest_decimals_unless_configured(tmp_path: Path) -> None:
    assert decimals([27.1, 1e-05, 100.0, 0.25]) == 5
    root = write_books(
        tmp_path / "books",
        [
            book("alpha", 0, [(27.095, 988.45)], [(27.101, 21.079)]),
            book("beta", 0, [(27.0999, 10.67)], [(27.1, 83.1)]),
        ],
    )
    assert infer_grid(root, "alpha", "ABC/USDT") == (Decimal("0.001"), Decimal("0.001"))
    assert infer_grid(root, "beta", "ABC/USDT") == (Decimal("0.0001"), Decimal("0.01"))
    assert infer_grid(root, "beta", "XYZ/USDT") is None

    settings = pair_settings(tmp_path)  # alpha and beta have a configured grid of 0.01
    markets = build_markets(settings, BOOKS, root)
    assert markets[BOOKS[0]].price_tick == Decimal("0.01")
    bare = settings_from(
        tmp_path,
        """
[venues.alpha]
exchange = "binance"
symbols = ["ABC/USDT"]
taker_fee = 0.001
""",
        "bare.toml",
    )
    market = build_markets(bare, BOOKS[:1], root)[BOOKS[0]]
    assert (market.price_tick, market.amount_step) == (Decimal("0.001"), Decimal("0.001"))
    assert (market.min_amount, market.min_notional, market.max_amount) == (0, 0, None)
    assert (market.taker_fee, market.maker_fee) == (Decimal("0.001"), 0)
