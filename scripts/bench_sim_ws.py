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
exchange event time in the message (Binance ``E``, OKX ``ts``).

The rate is driven with ``POST /_sim/rate`` (at most 1000 per venue) up a ladder, the
same rate on both venues. For each step, after a warm-up, the script reports the
updates/s delivered (both venues summed), delivered/requested, the simulator's and the
client's CPU%, lag median and p99, and the lag drift (median of the last quarter of the
window minus that of the first). A step *kept up* when delivered/requested >= 0.95, the
lag drift is under 25 ms and the simulator's send queues are not growing.

Baseline, measured in the same run: the same ladder read by a raw aiohttp websocket
client (orjson, as ccxt uses; sequence numbers checked) instead of ccxt; the ratio
ccxt/raw shows what ccxt's own handling costs the delivery.

    python scripts/bench_sim_ws.py [--duration 5] [--rates 100,250,500,1000]
                                   [--no-baseline] [--json] [--check]
                                   [--profile-server FILE.prof] [--server-loop uvloop]

``--check`` exits 1 when the target is missed. ``--profile-server`` runs the simulator
under cProfile (which slows it down) and writes the stats to FILE. Only 127.0.0.1 is
ever contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import select
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
DEFAULT_RATES = (100.0, 250.0, 500.0, 1000.0)
MAX_RATE_PER_VENUE = 1000.0
HOST = "127.0.0.1"
STATS_PATH = "/_bench/stats"


# ----- the simulator process ------------------------------------------------------------


def serve(cpu: int | None, profile: str | None, loop_kind: str) -> int:
    """The simulator's process: serve the default config on a free port until told to stop.

    Prints one JSON line ``{"port": N}`` when listening. Stops on SIGTERM, SIGINT or when
    its stdin closes (the benchmark died). Every venue starts frozen (rate 0).
    """
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
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


async def _serve(profiler: Any) -> None:
    from aiohttp import web

    from arbot.sim.config import load_sim_config
    from arbot.sim.server import SimServer

    server = SimServer(load_sim_config())
    published = dict.fromkeys(server.venues, 0)
    for name, venue in server.venues.items():
        server.rates[name] = 0.0
        setattr(venue, "publish", _counting_publish(venue.publish, published, name))  # noqa: B010

    async def stats(request: web.Request) -> web.Response:
        venues = {}
        for name, protocol in server.protocols.items():
            connections = list(protocol.connections)
            venues[name] = {
                "published": published[name],
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

    def on_stdin() -> None:
        if not os.read(sys.stdin.fileno(), 4096):
            loop.remove_reader(sys.stdin.fileno())
            stop.set()

    loop.add_reader(sys.stdin.fileno(), on_stdin)
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


def _counting_publish(
    publish: Callable[[str], Any], counts: dict[str, int], name: str
) -> Callable[[str], Any]:
    def counted(symbol: str) -> Any:
        diff = publish(symbol)
        if diff is not None:
            counts[name] += 1
        return diff

    return counted


class SimProcess:
    """The simulator as a child process pinned to one CPU."""

    def __init__(self, cpu: int | None, profile: str | None, loop_kind: str) -> None:
        command = [sys.executable, os.path.abspath(__file__), "--serve", "--server-loop", loop_kind]
        if cpu is not None:
            command += ["--cpu", str(cpu)]
        if profile:
            command += ["--profile-server", profile]
        self.proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True
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
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()


# ----- counting what the client receives ------------------------------------------------


@dataclass
class Tally:
    """Book updates received per venue and their lag, since the last :meth:`reset`."""

    counts: dict[str, int] = field(default_factory=dict)
    lags: list[tuple[float, float]] = field(default_factory=list)  # (received s, lag ms)
    gaps: int = 0  # sequence breaks seen (raw) or resyncs ccxt asked for (ccxt)
    errors: list[str] = field(default_factory=list)

    def record(self, venue: str, event_ms: int) -> None:
        now = time.time()
        self.counts[venue] = self.counts.get(venue, 0) + 1
        self.lags.append((now, now * 1000.0 - event_ms))

    def reset(self) -> None:
        self.counts = {}
        self.lags = []
        self.gaps = 0
        self.errors = []


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
        self.wakeups = 0
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
            self.wakeups += 1
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
    published: float  # diffs the simulator made, per second
    ratio: float  # delivered / requested
    vs_baseline: float | None  # delivered / raw client's delivered at the same rate
    server_cpu_pct: float
    client_cpu_pct: float
    server_us_per_update: float
    lag_p50_ms: float
    lag_p99_ms: float
    lag_drift_ms: float
    backlog_start: int
    backlog_end: int
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


class Bench:
    def __init__(self, sim: SimProcess, session: aiohttp.ClientSession, args: Any) -> None:
        self.sim = sim
        self.session = session
        self.args = args

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
        before = await self.get(STATS_PATH)
        tally.reset()
        server0 = self.sim.cpu_seconds()
        usage0 = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter()
        await asyncio.sleep(self.args.duration)
        wall = time.perf_counter() - start
        usage1 = resource.getrusage(resource.RUSAGE_SELF)
        server1 = self.sim.cpu_seconds()
        counts = dict(tally.counts)
        lags = list(tally.lags)
        gaps, errors = tally.gaps, list(tally.errors)
        after = await self.get(STATS_PATH)

        delivered_by_venue = {v.name: counts.get(v.name, 0) / wall for v in venues}
        delivered = sum(delivered_by_venue.values())
        requested = rate * len(venues)
        published = (
            sum(
                after["venues"][v.name]["published"] - before["venues"][v.name]["published"]
                for v in venues
            )
            / (after["time"] - before["time"])
        )
        server_cpu = server1 - server0
        client_cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
        ordered = sorted(lag for _, lag in lags)
        drift = lag_drift(lags)
        backlog_start = sum(v["backlog"] for v in before["venues"].values())
        backlog_end = sum(v["backlog"] for v in after["venues"].values())
        ratio = delivered / requested if requested else 0.0
        kept_up = (
            ratio >= MIN_DELIVERED_RATIO
            and drift < MAX_LAG_DRIFT_MS
            and backlog_end <= max(backlog_start, 0) + int(requested * 0.05)
        )
        return Step(
            client=client,
            requested_per_venue=rate,
            requested=requested,
            delivered=delivered,
            delivered_by_venue=delivered_by_venue,
            published=published,
            ratio=ratio,
            vs_baseline=None,
            server_cpu_pct=100.0 * server_cpu / wall,
            client_cpu_pct=100.0 * client_cpu / wall,
            server_us_per_update=1e6 * server_cpu / max(1, sum(counts.values())),
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
    return best, best is not None and best.delivered >= target


def print_table(steps: list[Step]) -> None:
    header = (
        f"{'client':<6} {'req/s':>6} {'deliv/s':>8} {'bin/s':>7} {'okx/s':>7} {'d/req':>6} "
        f"{'x raw':>6} {'srv CPU':>8} {'cli CPU':>8} {'srv us/u':>8} {'lag p50':>8} "
        f"{'lag p99':>8} {'drift':>7} {'backlog':>8} {'gaps':>5} {'kept up':>8}"
    )
    print(header)
    print("-" * len(header))
    for s in steps:
        by_venue = [*s.delivered_by_venue.values(), 0.0, 0.0]
        vs = f"{s.vs_baseline:6.3f}" if s.vs_baseline is not None else f"{'-':>6}"
        print(
            f"{s.client:<6} {s.requested:6.0f} {s.delivered:8.1f} {by_venue[0]:7.1f} "
            f"{by_venue[1]:7.1f} {s.ratio:6.3f} {vs} {s.server_cpu_pct:7.1f}% "
            f"{s.client_cpu_pct:7.1f}% {s.server_us_per_update:8.0f} {s.lag_p50_ms:6.1f}ms "
            f"{s.lag_p99_ms:6.1f}ms {s.lag_drift_ms:5.1f}ms {s.backlog_end:8d} {s.gaps:5d} "
            f"{'yes' if s.kept_up else 'NO':>8}"
        )
        if s.errors:
            print(f"       errors: {', '.join(s.errors)}")


async def run(args: Any, sim: SimProcess) -> list[Step]:
    import aiohttp

    rates = [min(MAX_RATE_PER_VENUE, r) for r in args.rates]
    async with aiohttp.ClientSession() as session:
        bench = Bench(sim, session, args)
        venues, keys = await bench.venues()
        if not args.json:
            names = ", ".join(f"{v.name} ({v.protocol}, {len(v.symbols)} symbols)" for v in venues)
            print(f"simulator pid {sim.proc.pid} on CPU {sim.affinity()}, port {sim.port}: {names}")
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
    parser.add_argument("--profile-server", metavar="FILE", help="cProfile the simulator")
    parser.add_argument(
        "--server-loop", choices=("asyncio", "uvloop"), default="asyncio", help="(asyncio)"
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=int, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve:
        return serve(args.cpu, args.profile_server, args.server_loop)
    cpus = sorted(os.sched_getaffinity(0))
    server_cpu = cpus[0]
    client_cpus = {c for c in cpus if c != server_cpu} or {server_cpu}
    os.sched_setaffinity(0, {min(client_cpus)})
    sim = SimProcess(server_cpu, args.profile_server, args.server_loop)
    try:
        steps = asyncio.run(run(args, sim))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        sim.stop()
    best, passed = verdict(steps, args.target)
    delivered = best.delivered if best else 0.0
    cpu = best.server_cpu_pct if best else float("nan")
    line = (
        f"sim ws delivery: {delivered:.0f} updates/s across 2 venues at {cpu:.0f}% server CPU "
        f"(target >= {args.target:.0f} on one core): {'PASS' if passed else 'FAIL'}"
    )
    if args.json:
        print(
            json.dumps(
                {
                    "steps": [asdict(s) for s in steps],
                    "target": args.target,
                    "delivered": delivered,
                    "server_cpu_pct": cpu,
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
        print(line)
    return 1 if args.check and not passed else 0


if __name__ == "__main__":
    sys.exit(main())
