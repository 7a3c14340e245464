"""``arbot run`` end to end against the simulator, as a separate process like in production.

Live mode with keys from an encrypted keystore: it trades a dislocation, serves its
metrics, stops on SIGTERM with nothing left open and a journal equal to the simulator's
own order list; it refuses to start with a key that can withdraw; it halts when a key
gains withdraw rights while running; SIGHUP reloads params. And ``arbot demo``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
from execution_support import journal_orders, sim_orders
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from arbot.engine.journal import Journal
from arbot.keys.keystore import Keystore
from arbot.sim.server import SimServer
from arbot.store import Store
from arbot.testing import sim_venue_config

PASSPHRASE = "daemon-test-passphrase"
SYMBOLS = ["BTC/USDT", "ETH/USDT"]
FEEDS = {f"{v}:{s}" for v in ("binance", "okx") for s in SYMBOLS}


def write_setup(
    tmp_path: Path, sim: SimServer, *, withdraw_on: str | None = None, recheck_s: int = 300
) -> Path:
    keystore = Keystore.create(tmp_path / "keys.enc", SecretStr(PASSPHRASE), scrypt_n=2**14)
    venues = ""
    for name in ("binance", "okx"):
        config = sim_venue_config(sim, name, symbols=SYMBOLS, withdraw_key=name == withdraw_on)
        assert config.credentials is not None
        keystore.add(name, config.credentials)
        venues += f"""
[venues.{name}]
exchange = "{config.exchange}"
symbols = ["BTC/USDT", "ETH/USDT"]
endpoint = "{config.endpoint}"
taker_fee = 0.001
stall_after_s = 3
"""
    keystore.save()
    path = tmp_path / "arbot.toml"
    path.write_text(
        f"""
database_url = "sqlite:///{tmp_path / "arbot.db"}"
keystore = "{tmp_path / "keys.enc"}"
{venues}
[strategy]
name = "cross_exchange"

[strategy.params]
min_edge_bps = 1
max_notional_quote = 300

[risk]
max_book_age_ms = 3000
max_orders_per_second = 10
permission_recheck_s = {recheck_s}

[ops]
port = 0
pid_file = "{tmp_path / "arbot.pid"}"
heartbeat_s = 1
"""
    )
    return path


class Daemon:
    """``arbot run`` in a subprocess, its log read line by line to await its events."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.seen: list[str] = []

    @classmethod
    async def start(cls, config: Path, *args: str) -> Daemon:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ARBOT_")}
        env["ARBOT_PASSPHRASE"] = PASSPHRASE
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "arbot",
            "run",
            "-c",
            str(config),
            *args,
            cwd=config.parent,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(process)

    async def expect(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        assert self.process.stderr is not None
        regex = re.compile(pattern)
        try:
            async with asyncio.timeout(timeout):
                while True:
                    raw = await self.process.stderr.readline()
                    if not raw:
                        raise AssertionError(f"log ended before {pattern!r}: {self.seen[-8:]}")
                    line = raw.decode()
                    self.seen.append(line)
                    match = regex.search(line)
                    if match:
                        return match
        except TimeoutError:
            raise AssertionError(f"no {pattern!r} within {timeout} s: {self.seen[-8:]}") from None

    async def all_live(self) -> None:
        live: set[str] = set()
        while live != FEEDS:
            live.add((await self.expect(r"feed (\S+): live")).group(1))

    async def finish(self, timeout: float = 60.0) -> tuple[int, str, str]:
        out, err = await asyncio.wait_for(self.process.communicate(), timeout)
        assert self.process.returncode is not None
        return self.process.returncode, out.decode(), "".join(self.seen) + err.decode()

    async def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


def order_arrivals(sim: SimServer) -> asyncio.Queue[str]:
    """Client order ids of user orders as the simulator receives them."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    for venue in sim.venues.values():

        def listen(order: Any, trade: Any) -> None:
            if order.account is not None and trade is None:
                queue.put_nowait(order.client_order_id)

        venue.order_listeners.append(listen)
    return queue


def user_orders(sim: SimServer) -> list[Any]:
    return [
        order
        for venue in sim.venues.values()
        for order in venue.orders.values()
        if order.account is not None
    ]


async def test_live_daemon_trades_serves_metrics_and_stops_cleanly(
    sim: SimServer, tmp_path: Path
) -> None:
    config = write_setup(tmp_path, sim)
    for name in sim.venues:
        sim.set_rate(name, 50)
    arrivals = order_arrivals(sim)
    daemon = await Daemon.start(config, "--mode", "live", "--yes", "--json")
    try:
        port = int((await daemon.expect(r"ops endpoint on http://127\.0\.0\.1:(\d+)/")).group(1))
        await daemon.all_live()
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                health = await response.json()
                assert response.status == 200, health
            async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                text = await response.text()
        samples = {
            (s.name, s.labels.get("venue"), s.labels.get("symbol")): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }
        for feed in FEEDS:
            venue, symbol = feed.split(":")
            assert samples[("arbot_book_updates_total", venue, symbol)] >= 1
            assert samples[("arbot_book_stale", venue, symbol)] == 0
        assert samples[("arbot_healthy", None, None)] == 1
        status = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "arbot",
            "status",
            "--port",
            str(port),
            "--json",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        shown, _ = await asyncio.wait_for(status.communicate(), 30)
        assert status.returncode == 0
        report = json.loads(shown)
        assert report["healthy"] is True
        assert report["mode"] == "live"
        assert report["keys"] == {"binance": "trade_only", "okx": "trade_only"}
        assert {f"{f['venue']}:{f['symbol']}" for f in report["feeds"]} == FEEDS

        # okx's BTC quotes jump 60 bps above binance's: buy binance, sell okx
        sim.makers["okx"].dislocate("BTC/USDT", 60)
        first = await asyncio.wait_for(arrivals.get(), 20)
        assert first.startswith("arb")
        daemon.process.send_signal(signal.SIGTERM)  # while trading
        code, out, log = await daemon.finish()
    finally:
        await daemon.kill()
    assert code == 0, log[-2000:]
    summary = json.loads(out)
    assert summary["status"] == "finished"
    assert summary["taken"] >= 1
    assert not [o for o in user_orders(sim) if o.status in ("NEW", "PARTIALLY_FILLED")]
    with Store(f"sqlite:///{tmp_path / 'arbot.db'}") as store:
        journal = Journal(store, summary["run_id"])
        assert journal_orders(journal, summary["run_id"]) == sim_orders(sim, "arb")
        assert all(j.order.status.is_final for j in journal.orders(run_id=summary["run_id"]))
    assert sim.venues["binance"].withdrawals == sim.venues["okx"].withdrawals == []
    assert not (tmp_path / "arbot.pid").exists()
    assert PASSPHRASE not in log
    assert PASSPHRASE not in out


async def test_live_mode_refuses_a_key_that_can_withdraw(sim: SimServer, tmp_path: Path) -> None:
    config = write_setup(tmp_path, sim, withdraw_on="okx")
    daemon = await Daemon.start(config, "--mode", "live", "--yes")
    code, _, log = await daemon.finish()
    assert code == 2
    errors = [line for line in log.splitlines() if line.startswith("arbot: error:")]
    assert len(errors) == 1
    assert "okx" in errors[0]
    assert "refusing to trade" in errors[0]
    assert user_orders(sim) == []


async def test_live_mode_without_a_terminal_needs_yes(sim: SimServer, tmp_path: Path) -> None:
    config = write_setup(tmp_path, sim)
    daemon = await Daemon.start(config, "--mode", "live")
    code, _, log = await daemon.finish()
    assert code == 2
    assert "live mode asks for confirmation on a terminal; pass --yes" in log
    assert user_orders(sim) == []


async def test_a_key_that_gains_withdraw_rights_halts_the_running_daemon(
    sim: SimServer, tmp_path: Path
) -> None:
    config = write_setup(tmp_path, sim, recheck_s=10)
    for name in sim.venues:
        sim.set_rate(name, 20)
    daemon = await Daemon.start(config, "--mode", "live", "--yes", "--json")
    try:
        await daemon.all_live()
        key = sim.key("okx", withdraw=False)
        sim.set_key_permissions("okx", key["apiKey"], ["read", "trade", "withdraw"])
        started = time.monotonic()
        await daemon.expect(r"gained funds-moving rights", timeout=30)
        assert time.monotonic() - started < 2 * 10 + 5  # a re-check, not a restart
        before = len(user_orders(sim))  # the sim's own dislocations may have been traded
        sim.makers["okx"].dislocate("BTC/USDT", 60)  # an opportunity nobody may take now
        code, out, log = await daemon.finish()
    finally:
        await daemon.kill()
    assert code == 1, log[-2000:]
    summary = json.loads(out)
    assert summary["status"] == "halted"
    assert "okx" in summary["reason"]
    assert len(user_orders(sim)) == before  # not one order after the halt


async def test_sighup_reloads_strategy_params_and_risk_limits(
    sim: SimServer, tmp_path: Path
) -> None:
    config = write_setup(tmp_path, sim)
    daemon = await Daemon.start(config, "--mode", "paper")
    try:
        await daemon.all_live()
        config.write_text(config.read_text().replace("min_edge_bps = 1", "min_edge_bps = 7"))
        daemon.process.send_signal(signal.SIGHUP)
        await daemon.expect(r"reloaded strategy params and risk limits")
        config.write_text(config.read_text().replace("min_edge_bps = 7", "min_edge_bps = -1"))
        daemon.process.send_signal(signal.SIGHUP)
        refused = await daemon.expect(r"reload refused: (.*)")
        assert "min_edge_bps" in refused.group(1)
        daemon.process.send_signal(signal.SIGTERM)
        code, _, log = await daemon.finish()
    finally:
        await daemon.kill()
    assert code == 0, log[-2000:]


def test_status_without_a_daemon_is_one_line_exit_2(tmp_path: Path) -> None:
    import socket
    import subprocess

    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    done = subprocess.run(
        [sys.executable, "-m", "arbot", "status", "--port", str(port)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert f"no arbot daemon answering on http://127.0.0.1:{port}/status" in done.stderr


def test_demo_finishes_in_time_with_trades(tmp_path: Path) -> None:
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith("ARBOT_")}
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "arbot",
            "demo",
            "--duration",
            "20",
            "--dir",
            str(tmp_path),
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-2000:]
    assert elapsed < 90
    summary = json.loads(done.stdout)
    assert summary["outcomes"].get("filled", 0) >= 1
    assert summary["fills"] >= 2
    assert summary["keys proven"] == "binance: trade_only, okx: trade_only"
    report = Path(summary["HTML report"]).read_text()
    assert "<svg" in report
    assert "opportunities taken" in report
    with Store(f"sqlite:///{tmp_path / 'arbot.db'}") as store:
        assert store.row_counts()["fills"] == summary["fills"]
