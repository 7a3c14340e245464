"""The simulator's aiohttp server: venues side by side under path prefixes.

``http://127.0.0.1:PORT/<venue>/...`` reaches one venue's REST API and
``ws://127.0.0.1:PORT/<venue>/...`` its websockets, in the venue's protocol; ``/_sim/``
is the control API. The server only ever binds to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiohttp import web

from arbot.sim.config import SimConfig
from arbot.sim.makers import FairValues, VenueMakers
from arbot.sim.venue import SimKey, SimMarket, SimVenue
from arbot.sim.wsconn import WsConnection

HOST = "127.0.0.1"
ACCOUNT = "main"
# The makers' loop wakes at most this often and runs the steps that fell due: each wake-up
# costs more than a step at high rates (measured by scripts/bench_sim_ws.py).
MIN_WAKE_S = 0.004


class VenueProtocol(Protocol):
    """What a wire protocol module provides for one venue."""

    venue: SimVenue
    connections: set[WsConnection]

    def add_routes(self, app: web.Application, prefix: str) -> None: ...

    def fault_response(self, status: int) -> web.Response: ...

    def urls(self, base: str) -> dict[str, str]: ...


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class SimServer:
    """Builds every venue from a :class:`SimConfig` and serves them on one port."""

    def __init__(self, config: SimConfig, *, makers: bool = True) -> None:
        """``makers=False`` starts with empty books and no maker tasks (replay fills them)."""
        self.config = config
        self.with_makers = makers
        self.venues: dict[str, SimVenue] = {}
        self.protocols: dict[str, VenueProtocol] = {}
        self.makers: dict[str, VenueMakers] = {}
        self.rates: dict[str, float] = {}
        self._rate_events: dict[str, asyncio.Event] = {}
        self.fair = FairValues(
            {a: c.usd for a, c in config.assets.items()},
            {a: c.volatility for a, c in config.assets.items()},
            config.seed,
        )
        self.app = web.Application(middlewares=[self._faults_middleware])
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.port: int | None = None
        for name in config.venues:
            self._build_venue(name)
        from arbot.sim.control import add_control_routes

        add_control_routes(self)

    def _build_venue(self, name: str) -> None:
        from arbot.sim.binance import BinanceProtocol
        from arbot.sim.okx import OkxProtocol

        spec = self.config.venues[name]
        markets = []
        for symbol in spec.symbols:
            m = self.config.market_for(name, symbol)
            base, quote = symbol.split("/")
            markets.append(
                SimMarket(
                    symbol, base, quote, m.tick, m.lot, m.min_amount, m.max_amount, m.min_notional
                )
            )
        venue = SimVenue(name, spec.protocol, markets, spec.maker_fee, spec.taker_fee)
        venue.add_account(ACCOUNT, dict(spec.balances))
        created = int(time.time() * 1000)
        for key in self.config.keys_for(name):
            assert key.api_key is not None
            assert key.secret is not None
            assert key.passphrase is not None
            venue.add_key(
                SimKey(
                    name,
                    key.name,
                    key.api_key,
                    key.secret,
                    key.passphrase,
                    frozenset(key.permissions),
                    ACCOUNT,
                    key.ip_restricted,
                    created,
                )
            )
        protocol: VenueProtocol
        protocol = BinanceProtocol(venue) if spec.protocol == "binance" else OkxProtocol(venue)
        protocol.add_routes(self.app, f"/{name}")
        self.venues[name] = venue
        self.protocols[name] = protocol
        self.makers[name] = VenueMakers(venue, self.fair, spec.makers.params(), self.config.seed)
        self.rates[name] = spec.updates_per_second

    # ----- lifecycle ------------------------------------------------------------------

    async def start(self, port: int | None = None) -> int:
        """Seed the books, bind 127.0.0.1 (``port`` 0 = any free one) and start the makers."""
        now = time.time()
        if self.with_makers:
            for name, makers in self.makers.items():
                for symbol in self.venues[name].markets:
                    makers.requote(symbol, now)
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, HOST, self.config.port if port is None else port)
        await site.start()
        self.port = _bound_port(site)
        for name in self.venues:
            self._rate_events[name] = asyncio.Event()
            if self.with_makers:
                self._tasks.append(
                    asyncio.create_task(self._drive(name), name=f"sim-makers-{name}")
                )
        return self.port

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for protocol in self.protocols.values():
            for connection in list(protocol.connections):
                await connection.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SimServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ----- what clients need ----------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def venue_url(self, name: str) -> str:
        """The ``endpoint`` value that points an arbot venue at this simulated venue."""
        return f"{self.base_url}/{name}"

    def urls(self, name: str) -> dict[str, str]:
        return self.protocols[name].urls(self.venue_url(name))

    def api_keys(self) -> list[dict[str, Any]]:
        out = []
        for name, venue in self.venues.items():
            for key in venue.keys.values():
                out.append(
                    {
                        "venue": name,
                        "protocol": venue.protocol,
                        "name": key.name,
                        "apiKey": key.api_key,
                        "secret": key.secret,
                        "password": key.passphrase or None,
                        "permissions": sorted(key.permissions),
                    }
                )
        return out

    def key(self, venue: str, *, withdraw: bool) -> dict[str, Any]:
        """A trade-only key (``withdraw=False``) or a withdraw-enabled key of ``venue``."""
        for entry in self.api_keys():
            if entry["venue"] == venue and ("withdraw" in entry["permissions"]) == withdraw:
                return entry
        raise KeyError(f"{venue} has no {'withdraw-enabled' if withdraw else 'trade-only'} key")

    def set_key_permissions(self, venue: str, api_key: str, permissions: list[str]) -> None:
        """Change a key's rights at run time (e.g. someone enables withdrawals)."""
        from dataclasses import replace

        from arbot.sim.config import PERMISSIONS

        unknown = sorted(set(permissions) - PERMISSIONS)
        if unknown:
            raise ValueError(
                f"unknown permission(s) {', '.join(unknown)}; use {sorted(PERMISSIONS)}"
            )
        sim_venue = self.venues[venue]
        key = sim_venue.keys.get(api_key)
        if key is None:
            raise KeyError(f"{venue} has no key {api_key[:4]}…")
        sim_venue.keys[api_key] = replace(key, permissions=frozenset(permissions))

    # ----- makers ---------------------------------------------------------------------

    def set_rate(self, name: str, updates_per_second: float) -> None:
        self.rates[name] = updates_per_second
        event = self._rate_events.get(name)
        if event is not None:
            event.set()

    def step(self, name: str, count: int = 1, symbol: str | None = None) -> None:
        """Requote ``count`` times by hand (tests run with ``updates_per_second = 0``)."""
        makers = self.makers[name]
        for _ in range(count):
            if symbol is None:
                makers.step(time.time())
            else:
                makers.requote(symbol, time.time())

    async def _drive(self, name: str) -> None:
        makers = self.makers[name]
        loop = asyncio.get_running_loop()
        next_due = loop.time()
        while True:
            rate = self.rates[name]
            if rate <= 0:
                event = self._rate_events[name]
                event.clear()
                await event.wait()
                next_due = loop.time()
                continue
            interval = 1.0 / rate
            now = loop.time()
            due = int((now - next_due) / interval) + 1 if now >= next_due else 0
            if due:
                wall = time.time()
                for _ in range(min(due, max(1, int(rate)))):
                    makers.step(wall)
                next_due += due * interval
            await asyncio.sleep(max(MIN_WAKE_S, next_due - loop.time()))  # the process's clock

    # ----- REST faults ----------------------------------------------------------------

    @web.middleware
    async def _faults_middleware(
        self, request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        venue_name = request.path.split("/", 2)[1] if request.path.count("/") >= 1 else ""
        protocol = self.protocols.get(venue_name)
        if protocol is None or request.headers.get("Upgrade", "").lower() == "websocket":
            return await handler(request)
        faults = protocol.venue.faults
        if faults.rest_stall_s:
            await asyncio.sleep(faults.rest_stall_s)  # the injected stall itself
        status = faults.take_rest_error()
        if status is not None:
            return protocol.fault_response(status)
        return await handler(request)


def _bound_port(site: web.TCPSite) -> int:
    """The port the OS gave a site started on port 0."""
    server = site._server
    sockets = getattr(server, "sockets", None)
    if not sockets:
        raise RuntimeError("the simulator's listening socket is missing")
    return int(sockets[0].getsockname()[1])
