"""``arbot record`` end to end: two venues x two symbols from the simulator into a dataset."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path

from arbot.feeds.dataset import read_dataset
from arbot.sim.server import SimServer

CONFIG = """
[venues.binance]
exchange = "binance"
symbols = ["BTC/USDT", "ETH/USDT"]
endpoint = "{binance}"

[venues.okx]
exchange = "okx"
symbols = ["BTC/USDT", "ETH/USDT"]
endpoint = "{okx}"
"""


async def arbot(cwd: Path, *args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARBOT_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "arbot",
        *args,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_record_two_venues_two_symbols_then_inspect(sim: SimServer, tmp_path: Path) -> None:
    (tmp_path / "arbot.toml").write_text(
        CONFIG.format(binance=sim.venue_url("binance"), okx=sim.venue_url("okx"))
    )
    for name in sim.venues:
        sim.set_rate(name, 100)
    code, out, err = await arbot(
        tmp_path, "record", "-c", "arbot.toml", "--out", "books", "--duration", "4", "--depth", "10"
    )
    assert code == 0, err
    assert "recorded into books" in out
    updates = list(read_dataset(tmp_path / "books"))
    feeds = {(u.venue, u.symbol) for u in updates}
    assert feeds == {(v, s) for v in ("binance", "okx") for s in ("BTC/USDT", "ETH/USDT")}
    times = [u.received_ns for u in updates]
    assert times == sorted(times)  # merged in time order
    assert all(u.bids and u.asks and u.bids[0][0] < u.asks[0][0] for u in updates)
    assert all(len(u.bids) <= 10 for u in updates)
    per_feed = {f: [u.sequence for u in updates if (u.venue, u.symbol) == f] for f in feeds}
    for sequences in per_feed.values():
        assert len(sequences) > 20
        assert sequences == sorted(sequences)  # no update recorded out of order
    leftovers = [p.name for p in (tmp_path / "books").rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []

    code, out, err = await arbot(tmp_path, "data", "info", "books", "--json")
    assert code == 0, err
    info = json.loads(out)
    assert {(r["venue"], r["symbol"]) for r in info} == feeds
    assert sum(r["rows"] for r in info) == len(updates)
    assert all(r["first"] <= r["last"] and r["first"].endswith("+00:00") for r in info)


async def test_bad_record_arguments(tmp_path: Path) -> None:
    (tmp_path / "arbot.toml").write_text("")
    code, _, err = await arbot(tmp_path, "record", "-c", "arbot.toml", "--out", "x")
    assert code == 2
    assert "no [venues] configured" in err
    code, _, err = await arbot(tmp_path, "data", "info", "missing")
    assert code == 2
    assert (
        err.strip()
        == "arbot: error: missing: no such folder; record one with arbot record --out DIR"
    )


class LogLines:
    """The recorder's log, read line by line as it is written, to await its events."""

    def __init__(self, stream: asyncio.StreamReader) -> None:
        self.stream = stream
        self.seen: list[str] = []

    async def expect(self, pattern: str, timeout: float = 20.0) -> str:
        regex = re.compile(pattern)
        try:
            async with asyncio.timeout(timeout):
                while True:
                    raw = await self.stream.readline()
                    if not raw:
                        raise AssertionError(f"log ended before {pattern!r}; saw {self.seen[-5:]}")
                    line = raw.decode()
                    self.seen.append(line)
                    if regex.search(line):
                        return line
        except TimeoutError:
            raise AssertionError(
                f"no {pattern!r} within {timeout} s; saw {self.seen[-8:]}"
            ) from None


async def test_record_30s_through_a_killed_stream_a_lost_diff_and_a_stall(
    sim: SimServer, tmp_path: Path
) -> None:
    config = CONFIG.format(binance=sim.venue_url("binance"), okx=sim.venue_url("okx"))
    config = config.replace('endpoint = "', 'stall_after_s = 1.5\nendpoint = "')
    (tmp_path / "arbot.toml").write_text(config)
    for name in sim.venues:
        sim.set_rate(name, 100)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARBOT_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "arbot",
        "record",
        "-c",
        "arbot.toml",
        "--out",
        "books",
        "--duration",
        "30",
        "--depth",
        "10",
        "--json",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    assert process.stdout is not None
    log = LogLines(process.stderr)
    try:
        feeds = {f"{v}:{s}" for v in ("binance", "okx") for s in ("BTC/USDT", "ETH/USDT")}
        live = set()
        while live != feeds:
            line = await log.expect(r"feed \S+: live")
            live.add(re.search(r"feed (\S+): live", line).group(1))  # type: ignore[union-attr]

        # 1. the exchange drops every websocket of one venue
        for connection in list(sim.protocols["binance"].connections):
            connection.close_soon()
        await log.expect(r"feed binance:\S+: reconnect")
        await log.expect(r"feed binance:\S+: resumed")

        # 2. one book diff is lost on the other venue
        sim.venues["okx"].faults.skip_symbols = ["BTC/USDT"]
        sim.venues["okx"].faults.skip_sequence = 1
        await log.expect(r"feed okx:BTC/USDT: gap")
        await log.expect(r"feed okx:BTC/USDT: resumed")

        # 3. a stream goes silent while its connection stays open
        binance = sim.venues["binance"]
        binance.faults.ws_stall = True
        binance.notify_faults()
        await log.expect(r"feed binance:\S+: stall")
        binance.faults.ws_stall = False
        binance.notify_faults()
        await log.expect(r"feed binance:\S+: resumed")

        out, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, "".join(log.seen[-10:])
    summary = {row["feed"]: row for row in json.loads(out)}
    assert set(summary) == feeds
    binance_rows = [summary[f] for f in feeds if f.startswith("binance")]
    okx_rows = [summary[f] for f in feeds if f.startswith("okx")]
    assert sum(r["reconnects"] for r in binance_rows) >= 2  # the kill and the stall
    assert sum(r["stalls"] for r in binance_rows) >= 1
    assert sum(r["gaps"] for r in okx_rows) >= 1
    assert summary["okx:BTC/USDT"]["gaps"] == 1

    updates = list(read_dataset(tmp_path / "books"))
    for feed in feeds:
        venue, symbol = feed.split(":")
        mine = [u for u in updates if (u.venue, u.symbol) == (venue, symbol)]
        assert len(mine) == summary[feed]["updates"]  # every update was recorded
        sequences = [u.sequence for u in mine]
        assert sequences == sorted(sequences), f"{feed} recorded out of order"
        times = [u.received_ns for u in mine]
        assert times == sorted(times)
        assert all(u.bids[0][0] < u.asks[0][0] for u in mine)
    code, out, err = await arbot(tmp_path, "data", "info", "books", "--json")
    assert code == 0, err
    info = json.loads(out)
    assert {f"{r['venue']}:{r['symbol']}" for r in info} == feeds
    assert sum(r["rows"] for r in info) == len(updates)
