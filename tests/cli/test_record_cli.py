"""``arbot record`` end to end: two venues x two symbols from the simulator into a dataset."""

from __future__ import annotations

import asyncio
import json
import os
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
