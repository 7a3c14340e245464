"""Crash safety: kill -9 an executing process at seeded random points, restart, reconcile.

A driver process (``execution_support.py`` run as a script) forks one child per seed;
the child trades three cross-exchange opportunities on this test's simulator and is
SIGKILLed either at the N-th step of the executor (after a journal write, before a
send, after an answer, ...) or a random number of milliseconds into its trading, which
can land anywhere, a SQLite commit included. Faults make some seeds reject or
part-fill a leg, so unwinds run too. After each kill, a restarted desk (new run, same
database) reconciles, and the simulator's own records must agree with the journal:

* no client order id reached the simulator twice (no duplicate order);
* every order the simulator received (or refused) is in the journal with the same
  venue, symbol, side, amount, price, status and filled amount (no order lost);
  journal orders the simulator never saw are ``canceled`` (never sent, never resent);
* no journal order is left unsettled, every taken opportunity has an outcome;
* the journal's fills are exactly the simulator's trades of those orders, and each
  opportunity's stored PnL equals the PnL computed from the simulator's trades; an
  opportunity is ``stranded`` exactly when its trades leave a net position
  (no unrecorded position).
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from collections import Counter
from pathlib import Path

from execution_support import (
    journal_orders,
    open_desk,
    sim_base_net,
    sim_configs,
    sim_orders,
    sim_pnl,
    sim_trades,
)

from arbot.engine.journal import Journal
from arbot.engine.reconcile import reconcile
from arbot.model import OrderStatus
from arbot.sim.server import SimServer
from arbot.store import Store

DRIVER = Path(__file__).with_name("execution_support.py")
SEEDS = range(30)


def job_for(seed: int) -> tuple[dict[str, object], dict[str, object]]:
    """The kill point and the faults of one seeded run."""
    rng = random.Random(seed)
    job: dict[str, object] = {"opportunities": 3, "amount": "0.0004"}
    if seed % 3 == 2:
        job["kill_after_ms"] = round(rng.uniform(0.0, 500.0), 1)
    else:
        job["kill_at"] = rng.randint(1, 45)
    faults: dict[str, object] = [
        {},
        {"partial_fill_orders": 1, "partial_fill_ratio": 0.5},
        {"reject_orders": 1},
    ][rng.randrange(3)]
    return job, faults


async def test_kill_9_at_random_points_loses_nothing_and_duplicates_nothing(
    frozen_sim: SimServer, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    Store(url).close()  # the schema exists before the first child opens it
    log = (tmp_path / "driver.log").open("w")
    driver = await asyncio.create_subprocess_exec(
        sys.executable,
        str(DRIVER),
        "--sim-url",
        frozen_sim.base_url,
        "--db",
        str(tmp_path / "crash.db"),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=log,
    )
    assert driver.stdin is not None
    assert driver.stdout is not None
    killed = 0
    outcomes: Counter[str] = Counter()
    windows: Counter[str] = Counter()  # which crash windows the kills landed in
    timings: list[float] = []
    try:
        # the restarted side: venues stay open across seeds; each restart is a new journal
        async with open_desk(sim_configs(frozen_sim), url) as desk:
            for seed in SEEDS:
                started = time.monotonic()
                job, faults = job_for(seed)
                for venue in frozen_sim.venues.values():
                    venue.faults.clear()
                frozen_sim.venues["okx"].faults.update(faults)
                driver.stdin.write(json.dumps(job).encode() + b"\n")
                await driver.stdin.drain()
                line = await asyncio.wait_for(driver.stdout.readline(), 60)
                assert line, f"seed {seed}: the driver died; see {tmp_path / 'driver.log'}"
                answer = json.loads(line)
                assert answer["killed"] or answer["exit_code"] == 0, (seed, answer)
                killed += bool(answer["killed"])
                run_id = answer["run_id"]
                assert run_id is not None, (seed, answer)
                for venue in frozen_sim.venues.values():
                    venue.faults.clear()
                restarted = Journal.start_run(desk.store, mode="live", strategy="test")
                report = await reconcile(
                    restarted, desk.venues, cancel_unknown=False, markets=desk.markets
                )
                assert report.unresolved == [], (seed, report.unresolved)
                assert report.unknown_open == []
                not_found = {o.client_order_id for o in report.not_found}
                windows["journalled, not sent"] += bool(report.not_found)
                windows["sent, answer not journalled"] += bool(report.settled)
                windows["fills fetched on restart"] += bool(report.fills_recorded)
                windows["execution finished on restart"] += bool(report.outcomes)
                outcomes.update(check_run(frozen_sim, restarted, run_id, seed, not_found))
                timings.append(time.monotonic() - started)
    finally:
        driver.stdin.close()
        await asyncio.wait_for(driver.wait(), 30)
        log.close()
    print(f"seconds per seed: median {sorted(timings)[len(timings) // 2]:.2f}")
    print(f"killed {killed} of {len(SEEDS)}; crash windows hit: {dict(windows)}")
    print(f"outcomes: {dict(outcomes)}")
    assert killed >= len(SEEDS) // 2, f"only {killed} runs were killed"
    assert outcomes["filled"], outcomes
    assert outcomes["unwound"], outcomes
    assert windows["journalled, not sent"], windows
    assert windows["sent, answer not journalled"], windows


def check_run(
    server: SimServer, journal: Journal, run_id: int, seed: int, not_found: set[str]
) -> list[str]:
    prefix = f"arb{run_id:x}o"
    simulated = sim_orders(server, prefix)
    sim_ids = Counter(row[0] for row in simulated)
    assert all(n == 1 for n in sim_ids.values()), (seed, "duplicate order", sim_ids)
    journalled = journal_orders(journal, run_id)
    in_sim = [row for row in journalled if row[0] in sim_ids]
    # A refused order leaves nothing to look up on a venue: when the process died before
    # writing the refusal, reconciliation finds no such order and marks it canceled.
    refused_unseen = {row[0] for row in simulated if row[6] == "rejected" and row[0] in not_found}
    simulated = [
        (*row[:6], "canceled", row[7]) if row[0] in refused_unseen else row for row in simulated
    ]
    assert in_sim == simulated, (seed, "journal != simulator")
    never_sent = [row for row in journalled if row[0] not in sim_ids]
    assert all(row[6] == OrderStatus.CANCELED.value for row in never_sent), (seed, never_sent)
    ids = [row[0] for row in journalled]
    stored = sorted(
        (f.venue, f.trade_id, f.amount, f.price, f.fee) for f in journal.fills(client_order_ids=ids)
    )
    traded = sorted(
        (name, str(t.trade_id), t.amount, t.price, t.fee) for name, t in sim_trades(server, ids)
    )
    assert stored == traded, (seed, "fills")
    outcomes = []
    for record in journal.opportunities(run_id=run_id):
        assert record.outcome is not None, (seed, record.id)
        own = [j.order.client_order_id for j in journal.orders(opportunity_id=record.id)]
        assert record.realised_pnl_quote == sim_pnl(server, own), (seed, record.id)
        stranded = sim_base_net(server, own) != 0
        assert (record.outcome == "stranded") == stranded, (seed, record.id, record.outcome)
        outcomes.append(record.outcome)
    return outcomes
