#!/usr/bin/env python3
"""Soak test: ``arbot run`` in live mode against the simulator, with faults at random.

The simulator (``arbot sim --port 0 --json``) and the daemon (``arbot run --mode live
--yes --json``, keys from a throwaway encrypted keystore holding the simulator's
trade-only keys) run as separate processes, as in production. For ``--duration``
seconds the script dislocates quotes every ~2 s (so there is something to trade) and,
every ``--fault-every`` s on average, injects one fault at random through the
simulator's control API: a websocket drop, a lost diff (sequence gap), a 429, a 5xx,
a stalled stream, partial fills, a rejected leg, clock skew. It samples the daemon's
resident memory every 2 s.

Then it stops the daemon with SIGTERM and checks:

* the daemon stayed up the whole time and exited 0 on SIGTERM;
* memory stayed flat: RSS growth after warm-up (the first max(30 s, 20 %) of the run)
  below 10 % (medians of the first and last five samples after warm-up);
* every order the simulator saw is in the journal and vice versa, with the same
  status and filled amount; no order is left open;
* no withdraw or transfer attempt reached the simulator;
* no secret (the keystore passphrase, an API secret or key) in the daemon's output,
  its log, the database or any file it wrote.

    python scripts/soak.py [--duration 300] [--fault-every 5] [--seed 1] [--json] [--keep]

Exit 0 when every check passes, 1 otherwise. Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import SecretStr

from arbot.keys.credentials import Credentials
from arbot.keys.keystore import Keystore

SYMBOLS = ["BTC/USDT", "ETH/USDT"]
VENUES = ["binance", "okx"]
PASSPHRASE_BYTES = 24
FAULTS = ["drop", "gap", "429", "5xx", "stall", "partial", "reject", "skew"]
OPEN = {"NEW", "PARTIALLY_FILLED"}


class Sim:
    def __init__(self, process: asyncio.subprocess.Process, info: dict[str, Any]) -> None:
        self.process = process
        self.info = info
        self.control = str(info["control"]).rstrip("/")
        self.http = aiohttp.ClientSession()

    @classmethod
    async def start(cls) -> Sim:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "arbot",
            "sim",
            "--port",
            "0",
            "--json",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        return cls(process, json.loads(line))

    async def get(self, path: str, **params: str) -> Any:
        async with self.http.get(f"{self.control}/{path}", params=params) as response:
            response.raise_for_status()
            return await response.json()

    async def post(self, path: str, body: dict[str, Any]) -> Any:
        async with self.http.post(f"{self.control}/{path}", json=body) as response:
            response.raise_for_status()
            return await response.json()

    async def stop(self) -> None:
        await self.http.close()
        if self.process.returncode is None:
            self.process.terminate()
            await self.process.wait()


def rss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


async def setup(sim: Sim, folder: Path, passphrase: str) -> tuple[Path, list[str]]:
    keys = await sim.get("keys")
    keystore = Keystore.create(folder / "keys.enc", SecretStr(passphrase), scrypt_n=2**14)
    secrets = [passphrase]
    venues_toml = ""
    urls = {v["venue"]: v for v in sim.info["venues"]}
    for name in VENUES:
        key = next(k for k in keys if k["venue"] == name and "withdraw" not in k["permissions"])
        secrets += [key["secret"], key["apiKey"]] + (
            [key["password"]] if key.get("password") else []
        )
        keystore.add(
            name,
            Credentials(
                api_key=SecretStr(key["apiKey"]),
                secret=SecretStr(key["secret"]),
                password=SecretStr(key["password"]) if key.get("password") else None,
            ),
        )
        venues_toml += f"""
[venues.{name}]
exchange = "{urls[name]["protocol"]}"
symbols = {json.dumps(SYMBOLS)}
endpoint = "{urls[name]["endpoint"]}"
taker_fee = 0.001
stall_after_s = 3
"""
    keystore.save()
    config = folder / "arbot.toml"
    config.write_text(
        f"""
database_url = "sqlite:///{folder / "arbot.db"}"
keystore = "{folder / "keys.enc"}"
{venues_toml}
[strategy]
name = "cross_exchange"

[strategy.params]
min_edge_bps = 1
max_notional_quote = 500
max_inventory_skew = 0.9

[risk]
max_book_age_ms = 3000
max_orders_per_second = 5
max_consecutive_failures = 1000
max_daily_loss = 100000
order_timeout_s = 3
permission_recheck_s = 60

[ops]
port = 0
pid_file = "{folder / "arbot.pid"}"

[log]
file = "{folder / "arbot.log"}"
"""
    )
    return config, secrets


async def inject(
    sim: Sim, rng: random.Random, fault: str, pending: list[asyncio.Task[Any]]
) -> None:
    venue = rng.choice(VENUES)
    if fault == "drop":
        await sim.post("drop", {"venue": venue})
    elif fault == "gap":
        await sim.post("faults", {"venue": venue, "skip_sequence": 1})
    elif fault == "429":
        await sim.post("faults", {"venue": venue, "rest_errors": [429], "retry_after_s": 1})
    elif fault == "5xx":
        await sim.post("faults", {"venue": venue, "rest_errors": [503, 500]})
    elif fault == "partial":
        await sim.post("faults", {"venue": venue, "partial_fill_orders": 2})
    elif fault == "reject":
        await sim.post("faults", {"venue": venue, "reject_orders": 1})
    elif fault in ("stall", "skew"):
        change = {"ws_stall": True} if fault == "stall" else {"clock_skew_ms": 30_000}
        undo = {"ws_stall": False} if fault == "stall" else {"clock_skew_ms": 0}
        await sim.post("faults", {"venue": venue, **change})

        async def later() -> None:
            await asyncio.sleep(rng.uniform(3.0, 6.0))  # the fault's own duration
            await sim.post("faults", {"venue": venue, **undo})

        pending.append(asyncio.create_task(later()))


class Run:
    """What one soak run observed."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.samples: list[tuple[float, int]] = []
        self.faults: dict[str, int] = dict.fromkeys(FAULTS, 0)
        self.unhealthy = 0
        self.alive = True


async def start_daemon(
    config: Path, folder: Path, passphrase: str, run: Run
) -> tuple[Any, int, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARBOT_")}
    env["ARBOT_PASSPHRASE"] = passphrase
    daemon = await asyncio.create_subprocess_exec(  # stdout: the JSON summary at the end
        sys.executable,
        "-m",
        "arbot",
        "run",
        "-c",
        str(config),
        "--mode",
        "live",
        "--yes",
        "--json",
        cwd=folder,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    ops_port: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def read_log() -> None:
        assert daemon.stderr is not None
        async for raw in daemon.stderr:
            line = raw.decode(errors="replace")
            run.log.append(line)
            match = re.search(r"ops endpoint on http://127\.0\.0\.1:(\d+)/", line)
            if match and not ops_port.done():
                ops_port.set_result(int(match.group(1)))

    reader = asyncio.create_task(read_log())
    port = await asyncio.wait_for(ops_port, 60)
    return daemon, port, reader


async def drive(args: argparse.Namespace, sim: Sim, daemon: Any, port: int, run: Run) -> None:
    """Trade for ``args.duration`` s with dislocations and random faults, sampling RSS."""
    rng = random.Random(args.seed)
    started = time.monotonic()
    pending: list[asyncio.Task[Any]] = []
    next_fault = started + rng.expovariate(1 / args.fault_every)
    next_dislocation = started + 1.0
    async with aiohttp.ClientSession() as http:
        while time.monotonic() - started < args.duration:
            await asyncio.sleep(0.5)  # the soak's own pacing
            now = time.monotonic()
            if daemon.returncode is not None:
                run.alive = False
                break
            if now >= next_dislocation:
                move = rng.choice((-1, 1)) * rng.uniform(30, 80)
                venue, symbol = rng.choice(VENUES), rng.choice(SYMBOLS)
                await sim.post("dislocate", {"venue": venue, "symbol": symbol, "bps": move})
                next_dislocation = now + rng.uniform(1.0, 3.0)
            if now >= next_fault:
                fault = rng.choice(FAULTS)
                run.faults[fault] += 1
                await inject(sim, rng, fault, pending)
                next_fault = now + rng.expovariate(1 / args.fault_every)
            if not run.samples or now - run.samples[-1][0] - started >= 2.0:
                rss = rss_kb(daemon.pid)
                if rss is not None:
                    run.samples.append((now - started, rss))
                try:
                    async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                        run.unhealthy += response.status != 200
                except aiohttp.ClientError:
                    run.unhealthy += 1
    for task in pending:
        await task
    for name in VENUES:
        await sim.post("faults", {"venue": name, "ws_stall": False, "clock_skew_ms": 0})


def memory_growth(samples: list[tuple[float, int]], duration: float) -> dict[str, Any]:
    warmup = max(30.0, 0.2 * duration)
    after = [rss for t, rss in samples if t >= warmup]
    if len(after) < 10:
        return {"rss_growth": None}  # too short a run to judge
    first = statistics.median(after[:5])
    last = statistics.median(after[-5:])
    return {"rss_first_kb": first, "rss_last_kb": last, "rss_growth": round(last / first - 1, 4)}


async def soak(args: argparse.Namespace) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="arbot-soak-"))
    passphrase = os.urandom(PASSPHRASE_BYTES).hex()
    sim = await Sim.start()
    daemon: Any = None
    checks: dict[str, Any] = {}
    run = Run()
    try:
        config, secrets = await setup(sim, folder, passphrase)
        for name in VENUES:
            await sim.post("rate", {"venue": name, "updates_per_second": 50})
        daemon, port, reader = await start_daemon(config, folder, passphrase, run)
        await drive(args, sim, daemon, port, run)
        if daemon.returncode is None:
            daemon.send_signal(signal.SIGTERM)
        out = await asyncio.wait_for(daemon.stdout.read(), 120)
        await asyncio.wait_for(daemon.wait(), 30)
        await reader
        checks["stayed_up"] = run.alive
        checks["exit_code"] = daemon.returncode
        checks.update(memory_growth(run.samples, args.duration))
        matches, detail = await compare_journal(sim, folder / "arbot.db")
        checks["journal_matches_simulator"], checks["journal_detail"] = matches, detail
        withdrawals = [w for name in VENUES for w in await sim.get("withdrawals", venue=name)]
        checks["withdraw_attempts"] = len(withdrawals)
        checks["secrets_found_in"] = find_secrets(secrets, folder, out.decode(), "".join(run.log))
        checks["faults"] = run.faults
        checks["unhealthy_samples"] = run.unhealthy
        checks["summary"] = json.loads(out) if out.strip() else {}
        growth = checks["rss_growth"]
        checks["passed"] = bool(
            run.alive
            and daemon.returncode == 0
            and (growth is None or growth < 0.10)
            and matches
            and not withdrawals
            and not checks["secrets_found_in"]
        )
        return checks
    finally:
        if daemon is not None and daemon.returncode is None:
            daemon.kill()
            await daemon.wait()
        await sim.stop()
        if args.keep:
            checks["folder"] = str(folder)
        else:
            shutil.rmtree(folder, ignore_errors=True)


_STATUS = {"FILLED": "filled", "CANCELED": "canceled", "REJECTED": "rejected"}


async def compare_journal(sim: Sim, database: Path) -> tuple[bool, str]:
    import sqlite3

    simulated: dict[str, tuple[str, Decimal]] = {}
    for name in VENUES:
        for order in await sim.get("orders", venue=name):
            if order["status"] in OPEN:
                return False, f"order {order['client_order_id']} still open on {name}"
            status = _STATUS.get(order["status"])
            if order["status"] == "EXPIRED":
                status = "expired" if name == "binance" else "canceled"
            filled = Decimal(order.get("filled") or 0)
            simulated[order["client_order_id"]] = (str(status), filled)
    with sqlite3.connect(database) as connection:
        rows = connection.execute("SELECT client_order_id, status, filled FROM orders").fetchall()
    journal = {cid: (status, Decimal(filled)) for cid, status, filled in rows}
    missing = sorted(set(simulated) - set(journal))
    if missing:
        return False, f"orders the simulator saw but the journal lacks: {missing[:5]}"
    wrong = [cid for cid in simulated if journal[cid] != simulated[cid]]
    if wrong:
        cid = wrong[0]
        return False, f"{len(wrong)} differ, e.g. {cid}: journal {journal[cid]} vs {simulated[cid]}"
    # Journal orders the simulator never saw were refused before reaching the venue
    # (a 5xx or 429 answered instead): they must be settled as such, nothing filled.
    unsent = {cid: journal[cid] for cid in set(journal) - set(simulated)}
    unsettled = {cid: v for cid, v in unsent.items() if v != ("canceled", Decimal(0))}
    if unsettled:
        return False, f"journal orders the simulator never saw, not settled: {unsettled}"
    return True, (
        f"{len(simulated)} orders agree; {len(unsent)} more never reached the simulator "
        "(answered 5xx/429) and are settled canceled with nothing filled"
    )


def find_secrets(secrets: list[str], folder: Path, *outputs: str) -> list[str]:
    found = []
    for index, text in enumerate(outputs):
        if any(s and s in text for s in secrets):
            found.append(("stdout", "stderr")[index])
    for path in folder.rglob("*"):
        if path.is_file() and path.name != "keys.enc":
            data = path.read_bytes()
            if any(s and s.encode() in data for s in secrets):
                found.append(str(path.name))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=300.0, help="seconds of trading")
    parser.add_argument(
        "--fault-every", type=float, default=5.0, help="mean seconds between faults"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    checks = asyncio.run(soak(args))
    if args.json:
        print(json.dumps(checks, indent=2, default=str))
    else:
        summary = checks.get("summary", {})
        verdict = "PASS" if checks["passed"] else "FAIL"
        rss = f"{checks.get('rss_first_kb')} kB -> {checks.get('rss_last_kb')} kB"
        print(f"soak {args.duration:.0f} s, seed {args.seed}: {verdict}")
        print(f"  daemon stayed up: {checks['stayed_up']}, exit code: {checks['exit_code']}")
        print(f"  RSS after warm-up: {rss} (growth {checks['rss_growth']}, limit 0.10)")
        print(f"  journal vs simulator: {checks['journal_detail']}")
        print(f"  withdraw/transfer attempts: {checks['withdraw_attempts']}")
        print(f"  secrets found in: {checks['secrets_found_in'] or 'nothing'}")
        print(f"  faults injected: {checks['faults']}")
        print(f"  unhealthy /healthz samples: {checks['unhealthy_samples']}")
        print(
            f"  trading: {summary.get('seen')} opportunities, {summary.get('taken')} taken, "
            f"outcomes {summary.get('outcomes')}, PnL {summary.get('pnl')}"
        )
    return 0 if checks["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
