"""The screened replay (:mod:`arbot.backtest.columnar`) changes the speed, never a result.

Random datasets (several parts per book, tiny batches so chunks end everywhere, updates of
two and three venues at equal times, one-sided books) are replayed three ways: moment by
moment the columnar reader gives exactly the plain replay's moments; a backtest screened
and unscreened writes byte-identical reports; and on the real LINK data the screen lets
only a few percent of the moments through to the strategy.
"""

from __future__ import annotations

import filecmp
import functools
import random
from pathlib import Path

import pytest
from backtest_support import MS, T0, link_settings, settings_from, write_books
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arbot.backtest import columnar, runner
from arbot.backtest.columnar import ColumnarMoments
from arbot.backtest.latency import Latency
from arbot.backtest.replay import moments, updates
from arbot.backtest.results import Recorder
from arbot.backtest.runner import Backtest
from arbot.feeds.book_feed import BookUpdate
from arbot.feeds.dataset import DatasetWriter

VENUES = ("alpha", "beta", "gamma")
SYMBOL = "ABC/USDT"


def random_books(seed: int, count: int, venues: int, together: float) -> list[BookUpdate]:
    """Random walks around 100 on a 0.01 grid, crossing each other often; ``together``:
    the chance that the next update shares the previous one's millisecond."""
    rng = random.Random(seed)
    mids = [100.0] * venues
    out: list[BookUpdate] = []
    at = 0
    for _ in range(count):
        if rng.random() >= together:
            at += rng.choice([1, 1, 2, 7])
        v = rng.randrange(venues)
        mids[v] += rng.choice([-3, -1, 0, 1, 3]) * 0.01
        if rng.random() < 0.1:
            mids[v] += rng.choice([-0.25, 0.25])  # a dislocation that beats fees
        mids[v] += (100.0 - mids[v]) * 0.05  # keep the venues near one another
        half = rng.choice([1, 1, 2, 4])
        bid_top = round(mids[v] * 100) - half
        bids = [(round((bid_top - i) * 0.01, 2), rng.randint(1, 40) / 10) for i in range(3)]
        asks = [
            (round((bid_top + 2 * half + i) * 0.01, 2), rng.randint(1, 40) / 10) for i in range(3)
        ]
        if rng.random() < 0.03:
            bids = []  # a one-sided book now and then
        out.append(BookUpdate(VENUES[v], SYMBOL, bids, asks, None, T0 + at * MS, None))
    return out


def write_parts(root: Path, books: list[BookUpdate], file_rows: int) -> Path:
    with DatasetWriter(root, file_rows=file_rows, row_group_rows=7) as writer:
        for update in sorted(books, key=lambda u: u.received_ns):
            writer.write(update)
    return root


def shape(moment: object) -> tuple[object, ...]:
    updates_ = moment.updates  # type: ignore[attr-defined]
    return (moment.ns, [(u.venue, u.bids, u.asks, u.received_ns) for u in updates_])  # type: ignore[attr-defined]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 10**6),
    count=st.integers(1, 120),
    venues=st.integers(2, 3),
    together=st.sampled_from([0.0, 0.3, 0.7]),
    file_rows=st.sampled_from([5, 17, 1000]),
    batch_rows=st.sampled_from([1, 3, 50]),
    delays=st.lists(st.sampled_from([0, 0, 1, 2.5]), min_size=3, max_size=3),
)
def test_columns_give_the_plain_replays_moments(
    tmp_path_factory: pytest.TempPathFactory,
    seed: int,
    count: int,
    venues: int,
    together: float,
    file_rows: int,
    batch_rows: int,
    delays: list[float],
) -> None:
    root = write_parts(
        tmp_path_factory.mktemp("books"), random_books(seed, count, venues, together), file_rows
    )
    books = [(v, SYMBOL) for v in VENUES[:venues]]
    latency = {v: Latency(ms) for v, ms in zip(VENUES, delays, strict=True)}
    window = {"start_ns": T0 + 3 * MS, "end_ns": T0 + 200 * MS} if seed % 3 == 0 else {}
    plain = [shape(m) for m in moments(updates(root, books, data_latency=latency, **window))]
    source = ColumnarMoments(
        root,
        books,
        shifts={v: model.sample_ns() for v, model in latency.items()},
        batch_rows=batch_rows,
        **window,
    )
    found = []
    while (moment := source.peek()) is not None:
        found.append(shape(moment))
        source.pop()
    assert found == plain


def pair_text(fee: str, order_ms: float, data_ms: tuple[float, float], min_edge: float) -> str:
    venues = ""
    for venue, delay in zip(VENUES[:2], data_ms, strict=True):
        venues += f"""
[venues.{venue}]
exchange = "binance"
symbols = ["{SYMBOL}"]
taker_fee = {fee}
balances = {{ USDT = 2000, ABC = 20 }}

[backtest.venues.{venue}]
markets = {{ "{SYMBOL}" = {{ price_tick = 0.01, amount_step = 0.1 }} }}
data_latency = {{ ms = {delay} }}
order_latency = {{ ms = {order_ms} }}
"""
    return f"""
{venues}
[strategy]
name = "cross_exchange"
[strategy.params]
min_edge_bps = {min_edge}

[risk]
max_order_notional = 1000000
max_symbol_notional = 1000000
max_open_exposure = 1000000
max_orders_per_second = 1000
max_daily_loss = 1000000
max_book_age_ms = 5
"""


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 10**6),
    together=st.sampled_from([0.0, 0.5]),
    fee=st.sampled_from(["0", "0.0005"]),
    order_ms=st.sampled_from([0, 0, 3]),
    data_ms=st.sampled_from([(0, 0), (0, 2), (1.5, 0)]),
    min_edge=st.sampled_from([0, 2]),
)
def test_a_screened_backtest_writes_the_plain_backtests_report(
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    seed: int,
    together: float,
    fee: str,
    order_ms: float,
    data_ms: tuple[float, float],
    min_edge: float,
) -> None:
    monkeypatch.setattr(columnar, "_BATCH_ROWS", 16)  # chunks end mid-run, often
    monkeypatch.setattr(columnar, "_MIN_BATCH_ROWS", 16)
    # A spread chart of at most 12 samples: the sampler thins itself out many times.
    monkeypatch.setattr(runner, "Recorder", functools.partial(Recorder, max_points=3))
    tmp = tmp_path_factory.mktemp("run")
    root = write_parts(tmp / "books", random_books(seed, 400, 2, together), 90)
    config = settings_from(tmp, pair_text(fee, order_ms, data_ms, min_edge))
    results = {}
    for screen in (True, False):
        backtest = Backtest(config, root, report=tmp / f"report-{screen}", screen=screen)
        results[screen] = backtest.run()
        assert backtest._source.screened is screen
    screened, plain = results[True].summary, results[False].summary
    assert screened == plain
    assert plain["opportunities_seen"] > 0  # there was something to find
    for name in ("summary.json", "trades.csv", "report.html"):
        assert filecmp.cmp(tmp / f"report-True/{name}", tmp / f"report-False/{name}", shallow=False)


def test_jittered_data_latency_or_no_screen_replays_every_moment(tmp_path: Path) -> None:
    root = write_books(tmp_path / "books", random_books(1, 50, 2, 0.2))
    jitter = pair_text("0", 0, (0, 0), 0).replace(
        "data_latency = { ms = 0 }", "data_latency = { ms = 1, jitter_ms = 1 }"
    )
    backtest = Backtest(settings_from(tmp_path, jitter), root)
    backtest.run()
    assert not backtest._source.screened
    # A strategy that offers no screen is run on every moment.
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "unscreened.py").write_text(
        """
from strategies.cross_exchange import CrossExchange

class Unscreened(CrossExchange):
    \"\"\"cross_exchange without its screen.\"\"\"
    name = "unscreened"

    def screen(self, ctx):
        return None
"""
    )
    text = pair_text("0", 0, (0, 0), 0).replace('name = "cross_exchange"', 'name = "unscreened"')
    text = text.replace("[strategy.params]", f'path = "{plugins}"\n[strategy.params]')
    backtest = Backtest(settings_from(tmp_path, text, "plain.toml"), root)
    summary = backtest.run().summary
    assert not backtest._source.screened
    assert summary["opportunities_seen"] > 0


def test_on_real_data_the_screen_lets_few_moments_through(link_data: Path, tmp_path: Path) -> None:
    backtest = Backtest(link_settings(tmp_path, fee="0.0001"), link_data)
    summary = backtest.run().summary
    assert summary["moments"] == 7_200
    assert summary["opportunities_taken"] == 94  # tests/backtest/test_link.py's count
    source = backtest._source
    assert isinstance(source, ColumnarMoments)
    # Built in full: the moments where a pair crosses after fees, plus the few applied
    # while an execution was under way; the other ~97 % were counted, not built.
    assert 94 <= source.built < 0.03 * 7_200
