"""Execution semantics in a backtest, on tiny datasets: an order meets the book as it is
when the order arrives; partial fills; FOK; answers slower than the order timeout."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

from backtest_support import MS, T0, book, pair_settings, write_books

from arbot.backtest.runner import Backtest, BacktestResult
from arbot.model import OrderStatus


def dislocation(tmp_path: Path, *, ask_depth: float = 1.0, later_ask: float = 0.0) -> Path:
    """At 0 ms alpha asks 100 and beta bids 101 (a crossing of ``ask_depth``); at 10 ms
    alpha's ask at 100 holds only ``later_ask`` (0: gone; 103 is behind it) and beta's bid
    falls to 100 (nothing crosses any more). Beta asks 101.2 throughout, where a short
    leg can be bought back within the unwind bound."""
    later = [(100.0, later_ask)] if later_ask else []
    return write_books(
        tmp_path / "books",
        [
            book("alpha", 0, [(99.0, 10.0)], [(100.0, ask_depth), (103.0, 10.0)]),
            book("beta", 0, [(101.0, ask_depth), (95.0, 10.0)], [(101.2, 10.0)]),
            book("alpha", 10, [(99.0, 10.0)], [*later, (103.0, 10.0)]),
            book("beta", 10, [(100.0, ask_depth)], [(101.2, 10.0)]),  # no new crossing
        ],
    )


def run(tmp_path: Path, data: Path, alpha_ms: float, risk: str = "") -> BacktestResult:
    alpha = f"order_latency = {{ ms = {alpha_ms} }}"
    return Backtest(pair_settings(tmp_path, alpha=alpha, risk=risk), data).run()


def orders_by_venue(result: BacktestResult) -> dict[str, list[object]]:
    out: dict[str, list[object]] = {}
    for done in result.recorder.executions:
        for order in done.result.orders:
            out.setdefault(order.venue, []).append(order)
    return out


def test_an_order_arriving_before_the_book_changes_fills(tmp_path: Path) -> None:
    result = run(tmp_path, dislocation(tmp_path), alpha_ms=5)
    assert result.summary["outcomes"] == {"filled": 1}
    fills = result.recorder.executions[0].result.fills
    buy = next(f for f in fills if f.venue == "alpha")
    assert (buy.price, buy.amount) == (Decimal(100), Decimal(1))
    assert buy.timestamp_ms == (T0 + 5 * MS) // MS  # filled when it arrived
    assert result.summary["pnl_net_quote"] == "1"


def test_an_order_meets_the_book_as_it_is_when_it_arrives(tmp_path: Path) -> None:
    # Decided at 0 ms on alpha's ask at 100; it reaches alpha at 50 ms, after the ask
    # left at 10 ms: nothing fills there, the sale on beta is bought back (unwound).
    result = run(tmp_path, dislocation(tmp_path), alpha_ms=50)
    s = result.summary
    assert s["opportunities_taken"] == 1
    assert s["outcomes"] == {"unwound": 1}
    assert s["legs_unwound"] == 1
    (entry,) = orders_by_venue(result)["alpha"]
    assert entry.status is OrderStatus.EXPIRED  # type: ignore[attr-defined]
    assert entry.filled == 0  # type: ignore[attr-defined]
    assert s["pnl_net_quote"] == "-0.2"  # sold at 101, bought back at 101.2


def test_an_order_arriving_at_the_instant_of_an_update_sees_that_update(tmp_path: Path) -> None:
    # Arrival at 10 ms, the update at 10 ms: moments are applied first at equal times.
    result = run(tmp_path, dislocation(tmp_path), alpha_ms=10)
    assert result.summary["outcomes"] == {"unwound": 1}


def test_a_short_book_at_arrival_gives_a_partial_fill(tmp_path: Path) -> None:
    data = dislocation(tmp_path, ask_depth=2.0, later_ask=0.5)
    result = run(tmp_path, data, alpha_ms=50)
    s = result.summary
    (entry,) = orders_by_venue(result)["alpha"]
    assert entry.amount == Decimal(2)  # type: ignore[attr-defined]
    assert entry.filled == Decimal("0.5")  # type: ignore[attr-defined]
    assert entry.status is OrderStatus.EXPIRED  # IOC: the rest expires  # type: ignore[attr-defined]
    assert s["outcomes"] == {"unwound": 1}
    assert s["legs_unwound"] == 1
    trades = result.recorder.executions[0].result.fills
    unwind = [f for f in trades if "u" in f.client_order_id.split("o")[-1]]
    assert [(f.venue, f.side.value, f.amount) for f in unwind] == [("beta", "buy", Decimal("1.5"))]


def test_fok_legs_fill_completely_or_not_at_all(tmp_path: Path) -> None:
    data = dislocation(tmp_path, ask_depth=2.0, later_ask=0.5)
    result = run(tmp_path, data, alpha_ms=50, risk="use_fok = true")
    by_venue = orders_by_venue(result)
    (entry,) = by_venue["alpha"]
    assert entry.time_in_force.value == "FOK"  # type: ignore[attr-defined]
    assert entry.filled == 0  # type: ignore[attr-defined]
    assert entry.status is OrderStatus.EXPIRED  # type: ignore[attr-defined]
    sale = by_venue["beta"][0]
    assert sale.filled == Decimal(2)  # type: ignore[attr-defined]
    assert result.summary["outcomes"] == {"unwound": 1}


def test_an_answer_slower_than_the_order_timeout_is_found_by_polling_in_replay_time(
    tmp_path: Path,
) -> None:
    # 6 s to reach alpha (and 6 s back), order_timeout_s = 5: the executor stops waiting
    # at 5 s and asks the venue until the order shows up, at 6 s. No wall time passes.
    data = write_books(
        tmp_path / "books",
        [
            book("alpha", 0, [(99.0, 10.0)], [(100.0, 1.0)]),
            book("beta", 0, [(101.0, 1.0)], [(101.2, 10.0)]),
        ],
    )
    started = time.perf_counter()
    result = run(tmp_path, data, alpha_ms=6000, risk="order_timeout_s = 5\nmax_book_age_ms = 60000")
    assert time.perf_counter() - started < 30  # would be > 12 s if anything slept for real
    assert result.summary["outcomes"] == {"filled": 1}
    done = result.recorder.executions[0]
    assert done.finished_ns - done.decided_ns >= 6_000 * MS
    buy = next(f for f in done.result.fills if f.venue == "alpha")
    assert buy.timestamp_ms == (T0 + 6_000 * MS) // MS


def test_rejections_are_counted_by_reason_and_stored_with_the_trades(tmp_path: Path) -> None:
    from arbot.engine.journal import Journal
    from arbot.store import Store

    data = write_books(
        tmp_path / "books",
        [
            book("alpha", 0, [(99.0, 10.0)], [(100.0, 1.0)]),  # 1 x 100: over the cap
            book("beta", 0, [(101.0, 5.0)], [(101.2, 10.0)]),
            book("alpha", 1000, [(99.0, 10.0)], [(100.0, 0.4)]),  # 0.4 x 100: taken
            book("beta", 1000, [(101.0, 5.0)], [(101.2, 10.0)]),
        ],
    )
    settings = pair_settings(tmp_path, risk="max_order_notional = 50")
    result = Backtest(settings, data).run()
    s = result.summary
    assert s["opportunities_seen"] == 2
    assert s["rejected"] == {"order_notional_cap": 1}
    assert s["opportunities_taken"] == 1
    with Store(settings.database_url) as store:
        stored = Journal(store, result.run_id).opportunities(run_id=result.run_id)
    assert [(o.taken, o.reason, o.outcome) for o in stored] == [
        (False, "order_notional_cap", None),
        (True, None, "filled"),
    ]
