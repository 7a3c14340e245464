"""Replay mode: recorded books served to unmodified ccxt clients.

The reference books in this file are rebuilt here, independently of
``arbot.sim.replay``, by the procedure Binance documents for a local order book.
Tests on real data skip when ``../shared/data`` is absent (a fresh clone).
"""

from __future__ import annotations

import asyncio
import csv
import gzip
import json
import os
import time
from bisect import bisect_left, insort
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from arbot.sim.replay import ReplayError, open_replay
from arbot.sim.server import SimServer
from arbot.sim.venue import BookDiff
from arbot.testing.sim import ccxt_client_config

# Recorded market data lives next to the project (../shared/data), never inside it;
# ARBOT_TEST_SHARED_DATA points elsewhere (e.g. a checkout in another folder).
SHARED_DATA = Path(
    os.environ.get("ARBOT_TEST_SHARED_DATA")
    or Path(__file__).resolve().parents[3] / "shared" / "data"
)
BTC_CAPTURE = "hftbacktest_binance_3venues/spot/btcusdt_20240808.gz"
LINK_FOLDER = "binance_huobi_linkusdt"
TOP = 20
DEPTH = 5000  # levels a ccxt client keeps (and asks in its REST snapshot)


def shared(relative: str) -> Path:
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"{path} is absent (shared data lives next to the project, not in it)")
    return path


# ----- an independent reference: Binance's documented local-book procedure ------------


class RefSide:
    """One side of a reference book: exact decimals, prices kept sorted ascending."""

    def __init__(self, descending: bool) -> None:
        self.descending = descending
        self.levels: dict[Decimal, Decimal] = {}
        self.prices: list[Decimal] = []

    def reset(self, levels: list[list[str]]) -> None:
        self.levels.clear()
        self.prices.clear()
        for price, amount in levels:
            self.set(price, amount)

    def set(self, price_text: str, amount_text: str) -> None:
        price, amount = Decimal(price_text), Decimal(amount_text)
        if amount == 0:
            if self.levels.pop(price, None) is not None:
                del self.prices[bisect_left(self.prices, price)]
        else:
            if price not in self.levels:
                insort(self.prices, price)
            self.levels[price] = amount

    def top(self, n: int | None = None) -> list[tuple[Decimal, Decimal]]:
        if self.descending:
            prices = self.prices[::-1] if n is None else self.prices[: -n - 1 : -1]
        else:
            prices = self.prices if n is None else self.prices[:n]
        return [(p, self.levels[p]) for p in prices]


def reference_books(path: Path) -> Iterator[tuple[int, RefSide, RefSide]]:
    """``(update id, bids, asks)`` after the snapshot and after each diff applied to it."""
    bids, asks = RefSide(descending=True), RefSide(descending=False)
    buffered: list[dict[str, Any]] = []
    book_id: int | None = None
    first = True

    def apply(diff: dict[str, Any]) -> bool:
        nonlocal book_id, first
        assert book_id is not None
        if diff["u"] <= book_id:
            return False  # older than the snapshot: dropped
        if first:
            assert diff["U"] <= book_id + 1 <= diff["u"], diff
        else:
            assert diff["U"] == book_id + 1, diff
        first = False
        for price, amount in diff["b"]:
            bids.set(price, amount)
        for price, amount in diff["a"]:
            asks.set(price, amount)
        book_id = diff["u"]
        return True

    with gzip.open(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            _, _, body = line.partition(" ")
            message = json.loads(body)
            if "lastUpdateId" in message:
                assert book_id is None, "one snapshot per capture expected"
                book_id = message["lastUpdateId"]
                bids.reset(message["bids"])
                asks.reset(message["asks"])
                yield book_id, bids, asks
                for diff in buffered:
                    if apply(diff):
                        yield book_id, bids, asks
                buffered.clear()
                continue
            data = message.get("data", {})
            if data.get("e") != "depthUpdate":
                continue
            if book_id is None:
                buffered.append(data)
            elif apply(data):
                yield book_id, bids, asks


def as_floats(levels: list[tuple[Decimal, Decimal]]) -> list[list[float]]:
    return [[float(p), float(q)] for p, q in levels]


def ccxt_top(client: Any, symbol: str, n: int) -> tuple[list[list[float]], list[list[float]]]:
    book = client.orderbooks[symbol]
    return [lvl[:2] for lvl in book["bids"][:n]], [lvl[:2] for lvl in book["asks"][:n]]


def sim_book(server: SimServer, venue: str, symbol: str, limit: int | None = None) -> Any:
    _, bids, asks = server.venues[venue].snapshot(symbol, limit)
    return (
        [(Decimal(p), Decimal(q)) for p, q in bids],
        [(Decimal(p), Decimal(q)) for p, q in asks],
    )


async def caught_up(client: Any, server: SimServer, venue: str, symbol: str) -> None:
    """Await ccxt.pro's updates until its book holds the simulator's latest update id."""
    target = server.venues[venue].update_ids[symbol]
    deadline = time.monotonic() + 10
    while (client.orderbooks[symbol]["nonce"] or 0) < target:
        assert time.monotonic() < deadline, "ccxt did not receive the update"
        try:
            await asyncio.wait_for(client.watch_order_book(symbol), timeout=1)
        except TimeoutError:
            continue  # the update may have landed before the watch was registered


async def new_client(server: SimServer, venue: str, symbol: str, limit: int | None = None) -> Any:
    import ccxt.pro

    exchange_class = ccxt.pro.binance if venue == "binance" else ccxt.pro.okx
    client = exchange_class(ccxt_client_config(server, venue, keys=False))
    await client.load_markets()
    await asyncio.wait_for(client.watch_order_book(symbol, limit), timeout=10)
    return client


# ----- the real Binance capture through ccxt.pro ---------------------------------------


async def test_capture_replayed_event_by_event_gives_ccxt_the_captured_book() -> None:
    """Every event of the capture, applied one at a time: after each, ccxt's top 20 equal
    the reference book after the same capture update (ids checked); at regular
    checkpoints and at the end the simulator's and ccxt's whole books equal it too.

    A second client joins half-way through, from the REST snapshot, like any late
    subscriber. Both watch with ``limit=5000``: ccxt trims its local book to ``limit``
    levels a side whenever a watch returns (default 1000), and a level it trimmed never
    comes back unless it changes, so with the default a client's top of book goes wrong
    once the price walks 1000 levels (here after event 2464; real Binance behaves alike).
    This capture never holds more than 2412 levels a side."""
    path = shared(BTC_CAPTURE)
    replay = open_replay(path)
    market = replay.markets[("binance", "BTC/USDT")]
    assert (market.tick, market.lot) == (Decimal("0.01"), Decimal("0.000001"))
    server = SimServer(replay.sim_config())
    await server.start(port=0)
    clients: list[Any] = []
    try:
        clients.append(await new_client(server, "binance", "BTC/USDT", DEPTH))
        compared = published = full_checks = 0
        steps = zip(replay.events(), reference_books(path), strict=True)
        for index, (event, (book_id, ref_bids, ref_asks)) in enumerate(steps):
            assert event.update_id == book_id
            assert event.replace == (index == 0)
            if index == replay.event_count // 2:
                clients.append(await new_client(server, "binance", "BTC/USDT", DEPTH))
            if replay.apply(server, event) is not None:
                published += 1
            expected = (as_floats(ref_bids.top(TOP)), as_floats(ref_asks.top(TOP)))
            for client in clients:
                await caught_up(client, server, "binance", "BTC/USDT")
                assert ccxt_top(client, "BTC/USDT", TOP) == expected, (
                    f"event {index}: {event.source}"
                )
                compared += 1
            if index % 100 == 0 or index == replay.event_count - 1:
                full = (ref_bids.top(), ref_asks.top())
                assert sim_book(server, "binance", "BTC/USDT") == full
                assert max(len(full[0]), len(full[1])) < DEPTH
                for client in clients:
                    assert ccxt_top(client, "BTC/USDT", DEPTH) == tuple(map(as_floats, full))
                full_checks += 1
        assert index == replay.event_count - 1 == 3449
        assert compared > 5000
        assert published > 3000
        assert full_checks == 36
    finally:
        for client in clients:
            await client.close()
        await server.close()


async def test_capture_replayed_as_fast_as_possible_keeps_ccxt_in_step() -> None:
    path = shared(BTC_CAPTURE)
    replay = open_replay(path)
    *_, (_, ref_bids, ref_asks) = reference_books(path)
    server = SimServer(replay.sim_config())
    await server.start(port=0)
    client = await new_client(server, "binance", "BTC/USDT", DEPTH)
    try:
        stats = await replay.run(server, speed=0)
        assert stats.events == replay.event_count == 3450
        assert stats.first_ns == replay.first_ns
        assert stats.last_ns == replay.last_ns
        assert 300 < stats.recorded_s < 400
        assert stats.elapsed_s < 30
        await caught_up(client, server, "binance", "BTC/USDT")
        expected = (as_floats(ref_bids.top(TOP)), as_floats(ref_asks.top(TOP)))
        assert ccxt_top(client, "BTC/USDT", TOP) == expected
        assert sim_book(server, "binance", "BTC/USDT") == (ref_bids.top(), ref_asks.top())
    finally:
        await client.close()
        await server.close()


# ----- the two-venue snapshot CSVs ------------------------------------------------------


def csv_row(path: Path, number: int) -> tuple[list[Any], list[Any]]:
    """Row ``number`` (1 = first data row) of a snapshot CSV, as exact (price, amount)."""
    with path.open(newline="") as fh:
        rows = csv.DictReader(fh)
        for i, row in enumerate(rows, 1):
            if i == number:
                bids = [(Decimal(row[f"b{k}"]), Decimal(row[f"bv{k}"])) for k in range(1, 11)]
                asks = [(Decimal(row[f"a{k}"]), Decimal(row[f"av{k}"])) for k in range(1, 11)]
                return bids, asks
    raise AssertionError(f"{path} has no row {number}")


async def test_link_csv_folder_serves_two_venues_each_equal_to_its_last_row() -> None:
    folder = shared(LINK_FOLDER)
    replay = open_replay(folder)
    assert replay.venues == {"binance": ["LINK/USDT"], "huobi": ["LINK/USDT"]}
    assert replay.protocols == {"binance": "binance", "huobi": "okx"}
    config = replay.sim_config()
    assert {name: v.updates_per_second for name, v in config.venues.items()} == {
        "binance": 0,
        "huobi": 0,
    }
    assert config.venues["binance"].balances["USDT"] >= 1_000_000
    assert len(config.keys_for("huobi")) == 2
    server = SimServer(config)
    await server.start(port=0)
    okx = await new_client(server, "huobi", "LINK/USDT")
    try:
        rows = 30
        stats = await replay.run(server, speed=0, max_events=2 * rows)
        assert stats.events == 2 * rows
        assert stats.recorded_s == rows - 1  # one row a second, the same seconds on both
        for venue, name in (("binance", "orderbook_bnc.csv"), ("huobi", "orderbook_hb.csv")):
            expected = csv_row(folder / name, rows)
            assert sim_book(server, venue, "LINK/USDT", 10) == expected
            assert sim_book(server, venue, "LINK/USDT") == expected  # nothing else left
        # an unmodified ccxt.pro okx client sees the Huobi rows through the OKX protocol
        await caught_up(okx, server, "huobi", "LINK/USDT")
        bids, asks = csv_row(folder / "orderbook_hb.csv", rows)
        assert ccxt_top(okx, "LINK/USDT", 10) == (as_floats(bids), as_floats(asks))
    finally:
        await okx.close()
        await server.close()


# ----- small synthetic recordings -------------------------------------------------------


def capture_lines(*messages: tuple[int, dict[str, Any]]) -> str:
    return "".join(f"{ns} {json.dumps(m, separators=(',', ':'))}\n" for ns, m in messages)


def depth(first: int, last: int, bids: list[list[str]], asks: list[list[str]]) -> dict[str, Any]:
    return {
        "stream": "ethbtc@depth@100ms",
        "data": {
            "e": "depthUpdate",
            "E": 1,
            "s": "ETHBTC",
            "U": first,
            "u": last,
            "b": bids,
            "a": asks,
        },
    }


TRADE = {"stream": "ethbtc@trade", "data": {"e": "trade", "s": "ETHBTC", "p": "0.05", "q": "1"}}
TICKER = {"stream": "ethbtc@bookTicker", "data": {"u": 9, "s": "ETHBTC", "b": "0.05"}}
SNAPSHOT = {
    "lastUpdateId": 7,
    "bids": [["0.05000", "1.000"], ["0.04990", "2.5"]],
    "asks": [["0.05010", "1.0"], ["0.05020", "3.0"]],
}


def good_capture() -> str:
    return capture_lines(
        (1_000, depth(1, 5, [["0.04990", "9"]], [])),  # u <= lastUpdateId: dropped
        (2_000, TRADE),
        (3_000, depth(6, 8, [["0.04980", "0.25"]], [])),  # straddles lastUpdateId + 1
        (4_000, SNAPSHOT),
        (5_000, TICKER),
        (6_000, depth(9, 10, [["0.05000", "0"]], [["0.05010", "0.125"]])),
        (7_000, depth(11, 11, [], [["0.05030", "2"]])),
    )


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


@pytest.mark.parametrize("name", ["capture.gz", "capture.txt"])
async def test_capture_snapshot_after_diffs_is_applied_the_binance_way(
    tmp_path: Path, name: str
) -> None:
    replay = open_replay(write(tmp_path, name, good_capture()))
    market = replay.markets[("binance", "ETH/BTC")]
    assert (market.tick, market.lot) == (Decimal("0.0001"), Decimal("0.001"))
    events = list(replay.events())
    assert [e.update_id for e in events] == [7, 8, 10, 11]
    assert [e.time_ns for e in events] == [4_000, 4_000, 6_000, 7_000]
    assert events[1].source.endswith(":3")
    config = replay.sim_config()
    assert set(config.assets) == {"ETH", "BTC"}
    server = SimServer(config)
    await server.start(port=0)
    try:
        stats = await replay.run(server, speed=0)
        assert (stats.events, stats.first_ns, stats.last_ns) == (4, 4_000, 7_000)
        assert sim_book(server, "binance", "ETH/BTC") == (
            [(Decimal("0.0499"), Decimal("2.5")), (Decimal("0.0498"), Decimal("0.25"))],
            [
                (Decimal("0.0501"), Decimal("0.125")),
                (Decimal("0.0502"), Decimal("3")),
                (Decimal("0.0503"), Decimal("2")),
            ],
        )
    finally:
        await server.close()


async def test_capture_with_a_gap_resynchronises_on_the_next_snapshot(tmp_path: Path) -> None:
    resync = {"lastUpdateId": 20, "bids": [["0.04900", "1"]], "asks": [["0.05100", "1"]]}
    text = good_capture() + capture_lines(
        (8_000, depth(13, 14, [["0.04970", "5"]], [])),  # gap: 12 is missing
        (9_000, depth(15, 21, [["0.04950", "1"]], [])),  # buffered, then continues 20
        (10_000, resync),
        (11_000, depth(22, 22, [], [["0.05100", "0"]])),
    )
    replay = open_replay(write(tmp_path, "gap.gz", text))
    events = list(replay.events())
    assert [(e.update_id, e.replace) for e in events] == [
        (7, True),
        (8, False),
        (10, False),
        (11, False),
        (20, True),
        (21, False),
        (22, False),
    ]
    server = SimServer(replay.sim_config())
    await server.start(port=0)
    try:
        await replay.run(server, speed=0)
        assert sim_book(server, "binance", "ETH/BTC") == (
            [(Decimal("0.0495"), Decimal("1")), (Decimal("0.049"), Decimal("1"))],
            [],
        )
    finally:
        await server.close()


def test_replaying_into_a_simulator_with_another_grid_is_refused(tmp_path: Path) -> None:
    from arbot.sim.config import load_sim_config

    replay = open_replay(write(tmp_path, "c.gz", good_capture()))
    server = SimServer(load_sim_config())  # ETH/BTC there: tick 0.00001, lot 0.0001
    first = next(replay.events())
    with pytest.raises(ReplayError, match=r"needs tick 0\.0001 and lot 0\.001; build the sim"):
        replay.apply(server, first)
    huobi_only = csv_text([("2021-08-20 00:00:00", "ETHBTC.HB", 30.0)])
    other = SimServer(open_replay(write(tmp_path, "o.csv", huobi_only)).sim_config())
    with pytest.raises(ReplayError, match="has no venue 'binance' listing ETH/BTC"):
        replay.apply(other, first)


def csv_text(rows: list[tuple[str, str, float]]) -> str:
    """Snapshot CSV rows ``(timestamp, symbol, mid)``: 10 levels a side, 0.01 apart."""
    header = ["timestamp", "symbol"]
    for prefix in ("b", "bv", "a", "av"):
        header += [f"{prefix}{i}" for i in range(1, 11)]
    lines = [",".join(header)]
    for stamp, symbol, mid in rows:
        bids = [f"{mid - 0.01 * i:.2f}" for i in range(1, 11)]
        asks = [f"{mid + 0.01 * i:.2f}" for i in range(1, 11)]
        sizes = [f"{1 + i / 10:.1f}" for i in range(10)]
        lines.append(",".join([stamp, symbol, *bids, *sizes, *asks, *sizes]))
    return "\n".join(lines) + "\n"


async def test_csv_rows_are_paced_and_same_second_rows_go_out_together(tmp_path: Path) -> None:
    stamps = ["2021-08-20 00:00:00", "2021-08-20 00:00:01", "2021-08-20 00:00:02"]
    write(tmp_path, "orderbook_bnc.csv", csv_text([(s, "ETHUSDT.BNC", 3000.0) for s in stamps]))
    write(tmp_path, "orderbook_hb.csv", csv_text([(s, "ETHUSDT.HB", 3000.5) for s in stamps]))
    replay = open_replay(tmp_path)
    server = SimServer(replay.sim_config())
    await server.start(port=0)
    loop = asyncio.get_running_loop()
    sent: list[tuple[float, str]] = []

    def listener(name: str) -> Callable[[BookDiff], None]:
        return lambda diff: sent.append((loop.time(), name))

    for name, venue in server.venues.items():
        venue.subscribe("ETH/USDT", listener(name))
    try:
        stats = await replay.run(server, speed=20)  # 2 s of recording in 0.1 s
        assert stats.events == 6
        assert 0.09 < stats.elapsed_s < 1.0
        # first rows publish the books; later rows are identical, so publish nothing
        assert [name for _, name in sent] == ["binance", "huobi"]
        assert sent[1][0] - sent[0][0] < 0.01
        assert sim_book(server, "huobi", "ETH/USDT", 1) == (
            [(Decimal("3000.49"), Decimal("1"))],
            [(Decimal("3000.51"), Decimal("1"))],
        )
    finally:
        await server.close()


# ----- bad recordings: one line, naming the file (and line) ----------------------------


def truncated_gzip(tmp_path: Path) -> Path:
    data = gzip.compress((good_capture() * 20).encode())
    path = tmp_path / "cut.gz"
    path.write_bytes(data[: len(data) - 30])
    return path


def truncated_long_gzip(tmp_path: Path) -> Path:
    """Cut far past the first 64 KiB, so the format is recognised before the cut shows."""
    trades = capture_lines(*((10_000 + i, TRADE) for i in range(4000)))
    data = gzip.compress((good_capture() + trades).encode())
    path = tmp_path / "cut.gz"
    path.write_bytes(data[: len(data) - 30])
    return path


BAD_FILES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "truncated gzip": (truncated_gzip, "truncated gzip"),
    "truncated long gzip": (truncated_long_gzip, "truncated gzip: the compressed data ends after"),
    "garbage line": (
        lambda p: write(p, "c.gz", good_capture() + "this is not a capture line\n"),
        ":8: expected '<receive time ns> <JSON object>'",
    ),
    "invalid json": (
        lambda p: write(p, "c.gz", good_capture() + '9000 {"stream": \n'),
        ":8: expected",
    ),
    "capture time goes back": (
        lambda p: write(p, "c.gz", good_capture() + capture_lines((6_500, TRADE))),
        ":8: receive time 6500 is earlier",
    ),
    "update-id gap": (
        lambda p: write(p, "c.gz", good_capture() + capture_lines((8_000, depth(13, 14, [], [])))),
        ":8: update-id gap",
    ),
    "no snapshot": (
        lambda p: write(p, "c.gz", capture_lines((1, depth(1, 2, [], [])))),
        "no REST depth snapshot",
    ),
    "futures capture": (
        lambda p: write(
            p, "c.gz", capture_lines((1, {"data": {"e": "depthUpdate", "pu": 1}, "stream": "x"}))
        ),
        ":1: futures depth stream",
    ),
    "csv wrong header": (
        lambda p: write(p, "orderbook_x.csv", "timestamp,symbol,open,high,low,close\n"),
        ":1: columns must be",
    ),
    "csv crossed row": (
        lambda p: write(
            p,
            "orderbook_x.csv",
            csv_text([("2021-08-20 00:00:00", "ETHUSDT.BNC", 3000.0)])
            + csv_text([("2021-08-20 00:00:01", "ETHUSDT.BNC", 3000.0)])
            .splitlines()[1]
            .replace(",3000.01,", ",2999.95,", 1)
            + "\n",
        ),
        ":3: crossed book",
    ),
    "csv time goes back": (
        lambda p: write(
            p,
            "orderbook_x.csv",
            csv_text(
                [
                    ("2021-08-20 00:00:01", "ETHUSDT.BNC", 3000.0),
                    ("2021-08-20 00:00:00", "ETHUSDT.BNC", 3000.0),
                ]
            ),
        ),
        ":3: timestamp 2021-08-20 00:00:00 is earlier",
    ),
    "csv unknown venue": (
        lambda p: write(
            p, "orderbook_x.csv", csv_text([("2021-08-20 00:00:00", "ETHUSDT.XYZ", 3000.0)])
        ),
        ":2: symbol 'ETHUSDT.XYZ' has no known venue suffix",
    ),
    "unknown format": (lambda p: write(p, "notes.txt", "hello\n"), "not a known replay format"),
    "missing file": (lambda p: p / "nothing-here.gz", "no such file"),
    "folder without recordings": (lambda p: p, "not a known replay format"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_recordings_raise_one_line_naming_the_file(tmp_path: Path, case: str) -> None:
    make, fragment = BAD_FILES[case]
    path = make(tmp_path)
    with pytest.raises(ReplayError) as caught:
        open_replay(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    assert fragment in message
