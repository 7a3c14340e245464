"""Start the simulator in-process, and configure a plain ccxt client against it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from arbot.sim.config import SimConfig, load_sim_config
from arbot.sim.server import SimServer

if TYPE_CHECKING:
    from arbot.config import VenueConfig


@asynccontextmanager
async def ccxt_client(
    server: SimServer,
    venue: str,
    *,
    withdraw_key: bool = False,
    keys: bool = True,
    websocket: bool = True,
    **overrides: Any,
) -> AsyncIterator[Any]:
    """A plain ccxt client (``ccxt.pro`` with ``websocket``, else ``ccxt.async_support``)
    pointed at ``venue`` of ``server``; closed on exit. ``overrides`` update the config,
    and ``options`` in them are merged into the simulator options."""
    if websocket:
        import ccxt.pro as ccxt_module
    else:
        import ccxt.async_support as ccxt_module

    config = ccxt_client_config(server, venue, withdraw_key=withdraw_key, keys=keys)
    options = {**config.get("options", {}), **overrides.pop("options", {})}
    config.update(overrides)
    config["options"] = options
    client = getattr(ccxt_module, server.venues[venue].protocol)(config)
    try:
        yield client
    finally:
        await client.close()


@asynccontextmanager
async def running_simulator(
    config: SimConfig | Path | None = None, *, updates_per_second: float | None = None
) -> AsyncIterator[SimServer]:
    """A started :class:`SimServer` on a free 127.0.0.1 port, closed on exit.

    ``updates_per_second`` overrides every venue's maker rate; ``0`` freezes the books
    until the test calls ``server.step(venue)``, which makes book tests deterministic.
    """
    if not isinstance(config, SimConfig):
        config = load_sim_config(config)
    server = SimServer(config)
    if updates_per_second is not None:
        for name in server.venues:
            server.rates[name] = updates_per_second
    await server.start(port=0)
    try:
        yield server
    finally:
        await server.close()


def ccxt_client_config(
    server: SimServer, venue: str, *, withdraw_key: bool = False, keys: bool = True
) -> dict[str, Any]:
    """Constructor arguments that point an unmodified ccxt client at ``venue``.

    Follows the verified facts in the project notes: URL overrides per protocol, the
    options that keep ``load_markets`` to the spot instruments call, and the rate
    limiter off (the simulator is local).
    """
    protocol = server.venues[venue].protocol
    urls = server.urls(venue)
    config: dict[str, Any] = {"enableRateLimit": False, "timeout": 10_000}
    if protocol == "binance":
        config["urls"] = {
            "api": {
                "public": urls["rest"] + "/api/v3",
                "private": urls["rest"] + "/api/v3",
                "sapi": urls["rest"] + "/sapi/v1",
                "ws": {"spot": urls["ws"]},
            }
        }
        config["options"] = {
            "fetchMarkets": {"types": ["spot"]},
            "fetchCurrencies": False,
            "fetchMargins": False,
        }
    else:
        config["urls"] = {"api": {"rest": urls["rest"], "ws": urls["ws"]}}
        config["options"] = {"fetchMarkets": {"types": ["spot"]}}
        config["has"] = {"fetchCurrencies": False}
    if keys:
        key = server.key(venue, withdraw=withdraw_key)
        config["apiKey"] = key["apiKey"]
        config["secret"] = key["secret"]
        if key["password"]:
            config["password"] = key["password"]
    return config


def sim_venue_config(
    server: SimServer,
    venue: str,
    *,
    withdraw_key: bool = False,
    keys: bool = True,
    symbols: list[str] | None = None,
    allow_unverified: bool = False,
) -> VenueConfig:
    """arbot's own venue settings for ``venue`` of ``server``, with a simulator key.

    The credentials are what ``arbot keys add`` would have stored: the venue's trade-only
    key, or its withdraw-enabled one with ``withdraw_key`` (to test refusals).
    """
    from pydantic import SecretStr

    from arbot.config import VenueConfig
    from arbot.keys.credentials import Credentials

    credentials = None
    if keys:
        key = server.key(venue, withdraw=withdraw_key)
        credentials = Credentials(
            api_key=SecretStr(key["apiKey"]),
            secret=SecretStr(key["secret"]),
            password=SecretStr(key["password"]) if key["password"] else None,
        )
    return VenueConfig(
        exchange=server.venues[venue].protocol,
        symbols=symbols or ["BTC/USDT", "ETH/USDT"],
        endpoint=server.venue_url(venue),
        allow_unverified_key=allow_unverified,
        credentials=credentials,
    )
