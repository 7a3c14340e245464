#!/usr/bin/env python3
"""How many websocket book updates per second can the simulator feed one ccxt.pro client?

Target: >= 2,000 updates/s across two venues (the default config's ``binance`` venue on
the Binance spot protocol and ``okx`` on OKX v5) with the simulator on one core, without
falling behind.

The simulator runs in its own process, pinned to one CPU, so its CPU time is measured
apart from the client's (``/proc/<pid>/stat``: user+sys seconds over wall seconds). The
client, pinned to another CPU when there is one, is one process with one unmodified
ccxt.pro exchange per venue, configured by :func:`arbot.testing.sim.ccxt_client_config`
from what the control API (``GET /_sim/venues``, ``GET /_sim/keys``) says. It watches
every symbol of both venues: ``watch_order_book_for_symbols`` on Binance, one
``watch_order_book`` loop per symbol on OKX. Every book update ccxt handles is counted
per venue, with its lag: the client's clock when ccxt has applied it, minus the
exchange event time in the message (Binance ``E``, OKX ``ts``). A step's window counts
the updates the simulator stamped inside it that reached the client by 0.5 s after its
end, so a backlog from before the window cannot inflate the figure.

The rate is driven with ``POST /_sim/rate`` (at most 1000 per venue) up a ladder, the
same rate on both venues. For each step, after a warm-up, the script reports the
updates/s delivered (both venues summed, and per venue), delivered/requested, the
simulator's and the client's CPU%, the simulator's CPU per delivered update, lag median
and p99, and the lag drift (median of the last quarter of the window minus that of the
first). A step *kept up* when delivered/requested >= 0.95, the lag drift is under 25 ms,
no sequence gap forced a resync and (with ``--server launcher``) the simulator's send
queues are not growing. The target is met when a step that kept up delivered at least
99.5% of 2,000/s to the ccxt client (the top step asks for exactly 2,000; see
``TARGET_TOLERANCE``).

The simulator is the shipped ``arbot sim --port 0 --json`` unless ``--server launcher``:
then it is this script's own launcher, which serves the same ``SimServer`` on the same
asyncio loop and adds one route, ``GET /_bench/stats``, with counters kept inside the
simulator's process: maker requotes run (``quotes/s``), diffs they published (``pub/s``;
a requote that changes nothing publishes none), wall time per requote (``step us``:
requote, match, publish, encode, queue) and the send queues' backlog.

Baseline, measured in the same run: the same ladder read by a raw aiohttp websocket
client (orjson, as ccxt uses; sequence numbers checked) instead of ccxt; the ratio
ccxt/raw shows what ccxt's own handling costs the delivery.

    python scripts/bench_sim_ws.py [--duration 5] [--rates 100,250,500,1000]
                                   [--no-baseline] [--json] [--check]
                                   [--server launcher [--profile-server FILE.prof]
                                                      [--server-loop uvloop]]

``--check`` exits 1 when the target is missed. ``--profile-server`` runs the simulator
under cProfile (which slows it down) and writes the stats to FILE; for a profile without
that overhead attach ``py-spy record -p PID`` to the simulator pid the script prints.
``--server-loop uvloop`` serves on uvloop instead of asyncio's loop. Only 127.0.0.1 is
ever contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import resource
import select
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    import aiohttp

    from arbot.sim.server import SimServer

TARGET_UPDATES_PER_S = 2000.0
MIN_DELIVERED_RATIO = 0.95
MAX_LAG_DRIFT_MS = 25.0
# The top step asks for exactly the target (2 venues x the control API's 1000/s cap), and
# a window's edges cut a message or two: allow 0.5%. Requotes that change nothing and so
# publish no diff are not excused (they show as pub/s < quotes/s with --server launcher).
TARGET_TOLERANCE = 0.005
GRACE_S = 0.5  # an update stamped in the window counts if it arrives this soon after it
HEADROOM_CPU_PCT = 90.0  # above this the simulator is saturated: say so next to the verdict
DEFAULT_RATES = (100.0, 250.0, 500.0, 1000.0)
MAX_RATE_PER_VENUE = 1000.0
HOST = "127.0.0.1"
STATS_PATH = "/_bench/stats"
PR_SET_PDEATHSIG = 1  # linux/prctl.h


# ----- the simulator process ------------------------------------------------------------


def serve(profile: str | None, loop_kind: str) -> int:
    """``--server launcher``: serve the default config on a free port until SIGTERM/SIGINT.

    What ``arbot sim --port 0`` serves, plus ``GET /_bench/stats`` (counters kept inside
    this process). Prints one JSON line ``{"port": N}`` when listening.
    """
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    if loop_kind == "uvloop":
        import uvloop

        loop_factory = uvloop.new_event_loop
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(_serve(profiler))
    if profiler is not None and profile:
        profiler.dump_stats(profile)
    return 0


@dataclass
class VenueCounters:
    """What the simulator did for one venue, counted inside its process."""

    requotes: int = 0  # maker steps the rate asked for
    published: int = 0  # book diffs they produced (a requote that changes nothing makes none)
    step_s: float = 0.0  # wall time inside the steps: requote, match, publish, encode, queue

    def watch(self, venue: Any, makers: Any) -> None:
        """Wrap the venue's ``publish`` and the makers' ``step`` (instance attributes only)."""
        publish, step = venue.publish, makers.step

        def counted_publish(symbol: str) -> Any:
            diff = publish(symbol)
            if diff is not None:
                self.published += 1
            return diff

        def timed_step(now: float) -> None:
            start = time.perf_counter()
            try:
                step(now)
            finally:
                self.requotes += 1
                self.step_s += time.perf_counter() - start

        venue.publish = counted_publish
        makers.step = timed_step


async def _serve(profiler: Any) -> None:
    from aiohttp import web

    from arbot.sim.config import load_sim_config
    from arbot.sim.server import SimServer

    server = SimServer(load_sim_config())
    counters = {name: VenueCounters() for name in server.venues}
    for name, venue in server.venues.items():
        server.rates[name] = 0.0
        counters[name].watch(venue, server.makers[name])

    async def stats(request: web.Request) -> web.Response:
        venues = {}
        for name, protocol in server.protocols.items():
            connections = list(protocol.connections)
            venues[name] = asdict(counters[name]) | {
                "sent": sum(c.sent for c in connections),
                "backlog": sum(len(getattr(c, "_outbox", ())) for c in connections),
                "connections": len(connections),
            }
        return web.json_response(
            {"time": time.monotonic(), "cpu_s": time.process_time(), "venues": venues}
        )

    server.app.router.add_get(STATS_PATH, stats)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    port = await server.start(port=0)
    print(json.dumps({"port": port}), flush=True)
    if profiler is not None:
        profiler.enable()
    try:
        await stop.wait()
    finally:
        if profiler is not None:
            profiler.disable()
        await server.close()


class SimProcess:
    """The simulator as a child process pinned to one CPU.

    ``kind`` "arbot" runs the shipped ``arbot sim --port 0 --json``; "launcher" runs
    :func:`serve` from this file (same server, plus in-process counters).
    """

    def __init__(self, kind: str, cpu: int, profile: str | None, loop_kind: str) -> None:
        if kind == "arbot":
            script = shutil.which("arbot", path=os.path.dirname(sys.executable))
            command = [script] if script else [sys.executable, "-m", "arbot"]
            command += ["sim", "--port", "0", "--json"]
        else:
            command = [sys.executable, os.path.abspath(__file__), "--serve"]
            command += ["--server-loop", loop_kind]
            if profile:
                command += ["--profile-server", profile]
        self.kind = kind
        self.proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            start_new_session=True,  # a Ctrl-C reaches the benchmark, which then stops it
            preexec_fn=_child_setup(cpu),  # noqa: PLW1509 - spawned before any thread exists
        )
        self.port = self._read_port(timeout=30.0)
        self.base = f"http://{HOST}:{self.port}"
        self._ticks = os.sysconf("SC_CLK_TCK")

    def _read_port(self, timeout: float) -> int:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else b""
        if not line:
            self.stop()
            raise RuntimeError(f"the simulator did not start (exit code {self.proc.poll()})")
        return int(json.loads(line)["port"])

    def cpu_seconds(self) -> float:
        """User + system CPU seconds the simulator process has used so far."""
        with open(f"/proc/{self.proc.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self._ticks  # utime, stime

    def affinity(self) -> list[int]:
        return sorted(os.sched_getaffinity(self.proc.pid))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _child_setup(cpu: int) -> Callable[[], None]:
    """Runs in the child before exec: pin it to ``cpu``; SIGTERM it if the benchmark dies."""

    def setup() -> None:
        os.sched_setaffinity(0, {cpu})
        with contextlib.suppress(OSError, AttributeError):
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)

    return setup


# ----- counting what the client receives ------------------------------------------------


@dataclass
class Tally:
    """Book updates received since the last :meth:`reset`: venue, client time, event time."""

    received: list[tuple[str, float, int]] = field(default_factory=list)
    gaps: int = 0  # sequence breaks seen (raw) or resyncs ccxt asked for (ccxt)
    errors: list[str] = field(default_factory=list)

    def record(self, venue: str, event_ms: int) -> None:
        self.received.append((venue, time.time(), event_ms))

    def reset(self) -> None:
        self.received = []
        self.gaps = 0
        self.errors = []

    def window(
        self, start: float, end: float, grace: float
    ) -> tuple[dict[str, int], list[tuple[float, float]]]:
        """Updates the simulator stamped in ``[start, end)`` that arrived by ``end + grace``:
        counts per venue and ``(received s, lag ms)``. A backlog from before the window
        cannot inflate the count, and updates that arrive later than that do not count."""
        counts: dict[str, int] = {}
        lags: list[tuple[float, float]] = []
        low, high, last = start * 1000.0, end * 1000.0, end + grace
        for venue, received, event_ms in self.received:
            if low <= event_ms < high and received <= last:
                counts[venue] = counts.get(venue, 0) + 1
                lags.append((received, received * 1000.0 - event_ms))
        return counts, lags


@dataclass(frozen=True)
class VenueInfo:
    name: str
    protocol: str
    symbols: list[str]
    urls: dict[str, str]


def exchange_id(symbol: str, protocol: str) -> str:
    base, quote = symbol.split("/")
    return f"{base}{quote}" if protocol == "binance" else f"{base}-{quote}"


async def raw_reader(
    session: aiohttp.ClientSession, venue: VenueInfo, tally: Tally, ready: asyncio.Event
) -> None:
    """Read one venue's book streams without ccxt: parse, check sequence, count."""
    import orjson
    from aiohttp import WSMsgType

    ids = [exchange_id(s, venue.protocol) for s in venue.symbols]
    last: dict[str, int] = {}
    if venue.protocol == "binance":
        url = venue.urls["ws"] + "/raw"
        request: dict[str, Any] = {
            "method": "SUBSCRIBE",
            "params": [f"{i.lower()}@depth@100ms" for i in ids],
            "id": 1,
        }
    else:
        url = venue.urls["ws"] + "/public"
        request = {"op": "subscribe", "args": [{"channel": "books", "instId": i} for i in ids]}
    async with session.ws_connect(url, autoping=True, compress=15, max_msg_size=0) as ws:
        await ws.send_str(json.dumps(request))
        ready.set()
        async for message in ws:
            if message.type != WSMsgType.TEXT or message.data == "pong":
                continue
            data = orjson.loads(message.data)
            if venue.protocol == "binance":
                if data.get("e") != "depthUpdate":
                    continue
                symbol, first, final = data["s"], data["U"], data["u"]
                if symbol in last and first != last[symbol] + 1:
                    tally.gaps += 1
                last[symbol] = final
                tally.record(venue.name, data["E"])
            else:
                action = data.get("action")
                if action is None:
                    continue
                book = data["data"][0]
                inst = data["arg"]["instId"]
                if action == "update":
                    if book["prevSeqId"] != last.get(inst):
                        tally.gaps += 1
                    tally.record(venue.name, int(book["ts"]))
                last[inst] = book["seqId"]


class _RemoteSim:
    """Just enough of :class:`SimServer` for ``ccxt_client_config``, from the control API."""

    def __init__(self, venues: list[VenueInfo], keys: list[dict[str, Any]]) -> None:
        self.venues = {v.name: v for v in venues}
        self._keys = keys

    def urls(self, name: str) -> dict[str, str]:
        return self.venues[name].urls

    def key(self, venue: str, *, withdraw: bool) -> dict[str, Any]:
        for entry in self._keys:
            if entry["venue"] == venue and ("withdraw" in entry["permissions"]) == withdraw:
                return entry
        raise KeyError(f"{venue} has no {'withdraw-enabled' if withdraw else 'trade-only'} key")


def _event_ms(protocol: str, message: Any) -> int | None:
    """The exchange event time of a book *update* message, or None for anything else."""
    if not isinstance(message, dict):
        return None
    if protocol == "binance":
        return int(message["E"]) if message.get("e") == "depthUpdate" else None
    if message.get("action") == "update" and message.get("arg", {}).get("channel") == "books":
        return int(message["data"][0]["ts"])
    return None


class CcxtClients:
    """One unmodified ccxt.pro exchange per venue, watching every symbol's book."""

    def __init__(self, venues: list[VenueInfo], keys: list[dict[str, Any]], tally: Tally) -> None:
        import ccxt.pro  # noqa: TID251 - the benchmark measures delivery to a plain ccxt client

        from arbot.testing.sim import ccxt_client_config

        remote = cast("SimServer", _RemoteSim(venues, keys))
        self.venues = venues
        self.tally = tally
        self.exchanges: dict[str, Any] = {}
        for venue in venues:
            exchange = getattr(ccxt.pro, venue.protocol)(ccxt_client_config(remote, venue.name))
            self._count_messages(exchange, venue)
            self.exchanges[venue.name] = exchange
        self._errors = ccxt.pro  # for the exception classes

    def _count_messages(self, exchange: Any, venue: VenueInfo) -> None:
        """Count each book update once ccxt has handled it (ccxt itself is untouched)."""
        handle = exchange.handle_message
        tally = self.tally

        def counted(client: Any, message: Any) -> Any:
            result = handle(client, message)
            event_ms = _event_ms(venue.protocol, message)
            if event_ms is not None:
                tally.record(venue.name, event_ms)
            return result

        exchange.handle_message = counted  # looked up when ccxt creates its websocket client

    async def load(self) -> None:
        await asyncio.gather(*(e.load_markets() for e in self.exchanges.values()))

    def watchers(self) -> Iterator[Callable[[], Awaitable[Any]]]:
        for venue in self.venues:
            exchange = self.exchanges[venue.name]
            if venue.protocol == "binance":
                yield _bind(exchange.watch_order_book_for_symbols, list(venue.symbols))
            else:
                for symbol in venue.symbols:
                    yield _bind(exchange.watch_order_book, symbol)

    async def watch(self, watcher: Callable[[], Awaitable[Any]]) -> None:
        errors = self._errors
        while True:
            try:
                book = await watcher()
            except (errors.ChecksumError, errors.InvalidNonce) as exc:
                self.tally.gaps += 1  # ccxt resynchronises on the next call
                self.tally.errors.append(type(exc).__name__)
                continue
            except errors.NetworkError as exc:
                self.tally.errors.append(f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(0.1)
                continue
            bids = book["bids"]
            if bids:
                _ = bids[0][0]  # what a strategy would read

    async def close(self) -> None:
        for exchange in self.exchanges.values():
            with contextlib.suppress(Exception):
                await exchange.close()


def _bind(method: Callable[..., Awaitable[Any]], arg: Any) -> Callable[[], Awaitable[Any]]:
    return lambda: method(arg)


# ----- one measured step ----------------------------------------------------------------


@dataclass
class Step:
    client: str  # raw | ccxt
    requested_per_venue: float
    requested: float  # both venues, per second
    delivered: float  # both venues, per second
    delivered_by_venue: dict[str, float]
    requoted: float | None  # maker steps the simulator ran, per second (launcher only)
    published: float | None  # diffs they made, per second (launcher only)
    ratio: float  # delivered / requested
    vs_baseline: float | None  # delivered / raw client's delivered at the same rate
    server_cpu_pct: float
    client_cpu_pct: float
    server_us_per_update: float
    step_us_per_update: float | None  # wall time per maker step (launcher only)
    lag_p50_ms: float
    lag_p99_ms: float
    lag_drift_ms: float
    backlog_start: int | None  # messages queued in the simulator (launcher only)
    backlog_end: int | None
    gaps: int
    kept_up: bool
    errors: list[str]


def percentile(ordered: list[float], q: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def lag_drift(lags: list[tuple[float, float]]) -> float:
    """Median lag of the window's last quarter minus that of its first quarter, in ms."""
    if len(lags) < 8:
        return 0.0
    ordered = sorted(lags)
    quarter = len(ordered) // 4
    first = statistics.median(lag for _, lag in ordered[:quarter])
    final = statistics.median(lag for _, lag in ordered[-quarter:])
    return final - first


def _inside(
    before: dict[str, Any] | None, after: dict[str, Any] | None, names: list[str]
) -> dict[str, Any]:
    """Rates and queues counted inside the simulator between two ``/_bench/stats``."""
    if before is None or after is None:
        return dict.fromkeys(
            ("requoted", "published", "step_us", "backlog_start", "backlog_end"), None
        )

    def made(key: str) -> float:
        return float(sum(after["venues"][v][key] - before["venues"][v][key] for v in names))

    wall = after["time"] - before["time"]
    requotes = made("requotes")
    return {
        "requoted": requotes / wall,
        "published": made("published") / wall,
        "step_us": 1e6 * made("step_s") / max(1.0, requotes),
        "backlog_start": sum(before["venues"][v]["backlog"] for v in names),
        "backlog_end": sum(after["venues"][v]["backlog"] for v in names),
    }


class Bench:
    def __init__(self, sim: SimProcess, session: aiohttp.ClientSession, args: Any) -> None:
        self.sim = sim
        self.session = session
        self.args = args

    async def stats(self) -> dict[str, Any] | None:
        if self.sim.kind != "launcher":
            return None
        stats: dict[str, Any] = await self.get(STATS_PATH)
        return stats

    async def get(self, path: str) -> Any:
        async with self.session.get(self.sim.base + path) as response:
            response.raise_for_status()
            return await response.json()

    async def set_rate(self, venues: list[VenueInfo], rate: float) -> None:
        for venue in venues:
            body = {"venue": venue.name, "updates_per_second": rate}
            async with self.session.post(self.sim.base + "/_sim/rate", json=body) as response:
                response.raise_for_status()

    async def venues(self) -> tuple[list[VenueInfo], list[dict[str, Any]]]:
        venues = [
            VenueInfo(v["venue"], v["protocol"], list(v["symbols"]), dict(v["urls"]))
            for v in await self.get("/_sim/venues")
        ]
        return venues, await self.get("/_sim/keys")

    async def measure(
        self, client: str, venues: list[VenueInfo], rate: float, tally: Tally
    ) -> Step:
        await self.set_rate(venues, rate)
        await asyncio.sleep(self.args.warmup)
        before = await self.stats()
        tally.reset()
        server0 = self.sim.cpu_seconds()
        usage0 = resource.getrusage(resource.RUSAGE_SELF)
        start, clock0 = time.perf_counter(), time.time()
        await asyncio.sleep(self.args.duration)
        wall, clock1 = time.perf_counter() - start, time.time()
        usage1 = resource.getrusage(resource.RUSAGE_SELF)
        server1 = self.sim.cpu_seconds()
        after = await self.stats()
        await asyncio.sleep(GRACE_S)  # the window's last updates are still on their way
        counts, lags = tally.window(clock0, clock1, GRACE_S)
        gaps, errors = tally.gaps, list(tally.errors)

        delivered_by_venue = {v.name: counts.get(v.name, 0) / (clock1 - clock0) for v in venues}
        delivered = sum(delivered_by_venue.values())
        requested = rate * len(venues)
        server_cpu = server1 - server0
        client_cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
        ordered = sorted(lag for _, lag in lags)
        drift = lag_drift(lags)
        ratio = delivered / requested if requested else 0.0
        inside = _inside(before, after, [v.name for v in venues])
        backlog_start, backlog_end = inside["backlog_start"], inside["backlog_end"]
        queues_ok = backlog_start is None or backlog_end <= backlog_start + int(requested * 0.05)
        kept_up = ratio >= MIN_DELIVERED_RATIO and drift < MAX_LAG_DRIFT_MS and queues_ok
        kept_up = kept_up and gaps == 0
        return Step(
            client=client,
            requested_per_venue=rate,
            requested=requested,
            delivered=delivered,
            delivered_by_venue=delivered_by_venue,
            requoted=inside["requoted"],
            published=inside["published"],
            ratio=ratio,
            vs_baseline=None,
            server_cpu_pct=100.0 * server_cpu / wall,
            client_cpu_pct=100.0 * client_cpu / wall,
            server_us_per_update=1e6 * server_cpu / max(1, sum(counts.values())),
            step_us_per_update=inside["step_us"],
            lag_p50_ms=percentile(ordered, 0.5),
            lag_p99_ms=percentile(ordered, 0.99),
            lag_drift_ms=drift,
            backlog_start=backlog_start,
            backlog_end=backlog_end,
            gaps=gaps,
            kept_up=kept_up,
            errors=sorted(set(errors))[:5],
        )

    async def run_raw(self, venues: list[VenueInfo], rates: list[float]) -> list[Step]:
        tally = Tally()
        ready = [asyncio.Event() for _ in venues]
        readers = [
            asyncio.create_task(raw_reader(self.session, venue, tally, event))
            for venue, event in zip(venues, ready, strict=True)
        ]
        try:
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in ready)), 10)
            return [await self.measure("raw", venues, rate, tally) for rate in rates]
        finally:
            await self.set_rate(venues, 0.0)
            for task in readers:
                task.cancel()
            await asyncio.gather(*readers, return_exceptions=True)

    async def run_ccxt(
        self, venues: list[VenueInfo], keys: list[dict[str, Any]], rates: list[float]
    ) -> list[Step]:
        tally = Tally()
        clients = CcxtClients(venues, keys, tally)
        watchers: list[asyncio.Task[None]] = []
        try:
            await clients.load()
            watchers = [asyncio.create_task(clients.watch(w)) for w in clients.watchers()]
            return [await self.measure("ccxt", venues, rate, tally) for rate in rates]
        finally:
            await self.set_rate(venues, 0.0)
            for task in watchers:
                task.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)
            await clients.close()


# ----- report ---------------------------------------------------------------------------


def verdict(steps: list[Step], target: float) -> tuple[Step | None, bool]:
    """The ccxt step with the most updates/s that kept up, and whether it meets the target."""
    kept = [s for s in steps if s.client == "ccxt" and s.kept_up]
    best = max(kept, key=lambda s: s.delivered, default=None)
    return best, best is not None and best.delivered >= target * (1.0 - TARGET_TOLERANCE)


def _no_nan(row: dict[str, Any]) -> dict[str, Any]:
    """NaN (a step that received nothing) as JSON null."""
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}


def _opt(value: float | None, spec: str) -> str:
    return "-" if value is None else spec.format(value)


def print_table(steps: list[Step]) -> None:
    venues = list(steps[0].delivered_by_venue) if steps else []

    def ms(value: float) -> str:
        return f"{value:.1f}ms"

    columns: list[tuple[str, Callable[[Step], str]]] = [
        ("client", lambda s: s.client),
        ("req/s", lambda s: f"{s.requested:.0f}"),
        ("quotes/s", lambda s: _opt(s.requoted, "{:.1f}")),
        ("pub/s", lambda s: _opt(s.published, "{:.1f}")),
        ("deliv/s", lambda s: f"{s.delivered:.1f}"),
        *((f"{v[:7]}/s", lambda s, v=v: f"{s.delivered_by_venue[v]:.1f}") for v in venues),
        ("d/req", lambda s: f"{s.ratio:.3f}"),
        ("x raw", lambda s: "-" if s.vs_baseline is None else f"{s.vs_baseline:.3f}"),
        ("srv CPU", lambda s: f"{s.server_cpu_pct:.1f}%"),
        ("cli CPU", lambda s: f"{s.client_cpu_pct:.1f}%"),
        ("srv us/u", lambda s: f"{s.server_us_per_update:.0f}"),
        ("step us", lambda s: _opt(s.step_us_per_update, "{:.0f}")),
        ("lag p50", lambda s: ms(s.lag_p50_ms)),
        ("lag p99", lambda s: ms(s.lag_p99_ms)),
        ("drift", lambda s: ms(s.lag_drift_ms)),
        ("backlog", lambda s: _opt(s.backlog_end, "{}")),
        ("gaps", lambda s: str(s.gaps)),
        ("kept up", lambda s: "yes" if s.kept_up else "NO"),
    ]
    columns = [c for c in columns if any(c[1](s) != "-" for s in steps)]  # e.g. launcher-only
    rows = [[title for title, _ in columns]] + [[cell(s) for _, cell in columns] for s in steps]
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    for n, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        print("  ".join(cells))
        if n == 0:
            print("-" * (sum(widths) + 2 * (len(widths) - 1)))
        elif steps[n - 1].errors:
            print(f"    errors: {', '.join(steps[n - 1].errors)}")


async def run(args: Any, sim: SimProcess) -> list[Step]:
    import aiohttp

    rates = list(args.rates)
    async with aiohttp.ClientSession() as session:
        bench = Bench(sim, session, args)
        venues, keys = await bench.venues()
        await bench.set_rate(venues, 0.0)  # `arbot sim` starts at its configured rate
        if not args.json:
            names = ", ".join(f"{v.name} ({v.protocol}, {len(v.symbols)} symbols)" for v in venues)
            print(
                f"simulator ({sim.kind}) pid {sim.proc.pid} on CPU {sim.affinity()}, "
                f"port {sim.port}: {names}"
            )
            print(
                f"client pid {os.getpid()} on CPU {sorted(os.sched_getaffinity(0))}; "
                f"{args.warmup:g} s warm-up + {args.duration:g} s per step",
                flush=True,
            )
        baseline = [] if args.no_baseline else await bench.run_raw(venues, rates)
        measured = await bench.run_ccxt(venues, keys, rates)
    raw = {s.requested: s.delivered for s in baseline}
    for step in measured:
        if raw.get(step.requested):
            step.vs_baseline = step.delivered / raw[step.requested]
    return baseline + measured


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per step (5)")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before a step (1)")
    parser.add_argument(
        "--rates",
        type=lambda text: [float(r) for r in text.split(",")],
        default=list(DEFAULT_RATES),
        help="updates/s per venue, comma separated, each <= 1000 (100,250,500,1000)",
    )
    parser.add_argument("--target", type=float, default=TARGET_UPDATES_PER_S, help="updates/s")
    parser.add_argument("--no-baseline", action="store_true", help="skip the raw client")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--check", action="store_true", help="exit 1 if the target is missed")
    parser.add_argument(
        "--server",
        choices=("arbot", "launcher"),
        default="arbot",
        help="arbot: the shipped `arbot sim`; launcher: this script's, with in-process "
        "counters (quotes/s, pub/s, step us, send backlog) (arbot)",
    )
    parser.add_argument(
        "--profile-server", metavar="FILE", help="cProfile the simulator (--server launcher)"
    )
    parser.add_argument(
        "--server-loop",
        choices=("asyncio", "uvloop"),
        default="asyncio",
        help="event loop of --server launcher (asyncio)",
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.server == "arbot" and (args.profile_server or args.server_loop != "asyncio"):
        parser.error("--profile-server and --server-loop need --server launcher")
    if not all(0 < r <= MAX_RATE_PER_VENUE for r in args.rates):
        parser.error(f"--rates: each rate must be > 0 and <= {MAX_RATE_PER_VENUE:.0f}")
    if args.duration <= 0 or args.warmup < 0:
        parser.error("--duration must be > 0 and --warmup >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve:
        return serve(args.profile_server, args.server_loop)
    cpus = sorted(os.sched_getaffinity(0))
    server_cpu = cpus[0]
    client_cpus = {c for c in cpus if c != server_cpu} or {server_cpu}
    os.sched_setaffinity(0, {min(client_cpus)})
    try:
        sim = SimProcess(args.server, server_cpu, args.profile_server, args.server_loop)
    except RuntimeError as exc:
        print(f"bench_sim_ws: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130  # the child gets SIGTERM from PR_SET_PDEATHSIG
    try:
        steps = asyncio.run(run(args, sim))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        sim.stop()
    best, passed = verdict(steps, args.target)
    delivered = best.delivered if best else 0.0
    cpu = best.server_cpu_pct if best else None
    venues = len(steps[-1].delivered_by_venue) if steps else 0
    top = max((s for s in steps if s.client == "ccxt"), key=lambda s: s.requested, default=None)
    per_core = 1e6 / top.server_us_per_update if top and top.server_us_per_update else 0.0
    line = (
        f"sim ws delivery: {delivered:.0f} updates/s across {venues} venues at "
        f"{'-' if cpu is None else f'{cpu:.0f}'}% server CPU (target >= {args.target:.0f} on "
        f"one core): {'PASS' if passed else 'FAIL'}"
    )
    if args.json:
        print(
            json.dumps(
                {
                    "steps": [_no_nan(asdict(s)) for s in steps],
                    "target": args.target,
                    "delivered": delivered,
                    "server_cpu_pct": cpu,
                    "server_us_per_update_at_top": top.server_us_per_update if top else None,
                    "updates_per_core_estimate": per_core,
                    "passed": passed,
                    "summary": line,
                },
                indent=2,
            )
        )
    else:
        print()
        print_table(steps)
        print()
        if top is not None:
            print(
                f"simulator CPU per delivered update at {top.requested:.0f}/s: "
                f"{top.server_us_per_update:.0f} us (one core's worth: ~{per_core:.0f}/s)"
            )
        if best is not None and best.server_cpu_pct >= HEADROOM_CPU_PCT:
            print(
                f"note: the simulator used {best.server_cpu_pct:.0f}% of its core there (lag p50 "
                f"{best.lag_p50_ms:.1f} ms): it keeps up with no headroom"
            )
        print(line)
    return 1 if args.check and not passed else 0


if __name__ == "__main__":
    sys.exit(main())
