"""The ``/_sim/`` control API over real HTTP, and the running makers' own clock."""

from __future__ import annotations

from typing import Any

import aiohttp
import ccxt
import pytest

from arbot.sim.config import KeyConfig, load_sim_config
from arbot.sim.server import SimServer
from arbot.testing import ccxt_client, running_simulator


async def call(server: SimServer, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, f"{server.base_url}/_sim/{path}", **kwargs) as response,
    ):
        return response.status, await response.json()


async def test_faults_are_validated_and_cleared(frozen_sim: SimServer) -> None:
    status, body = await call(
        frozen_sim, "POST", "faults", json={"venue": "okx", "reject_orders": "x"}
    )
    assert status == 400
    assert "reject_orders" in body["error"]
    status, body = await call(frozen_sim, "POST", "faults", json={"venue": "okx", "colour": 1})
    assert status == 400
    assert body["error"].startswith("unknown fault(s) colour; known: rest_errors")
    status, body = await call(frozen_sim, "POST", "faults", json={"venue": "nope"})
    assert status == 400
    assert "unknown venue 'nope'" in body["error"]
    status, body = await call(
        frozen_sim, "POST", "faults", json={"venue": "okx", "reject_orders": 2, "ws_delay_ms": 5}
    )
    assert status == 200
    assert frozen_sim.venues["okx"].faults.reject_orders == 2
    status, body = await call(frozen_sim, "DELETE", "faults?venue=okx")
    assert body["reject_orders"] == 0
    assert frozen_sim.venues["okx"].faults.ws_delay_ms == 0


async def test_step_price_dislocation_and_book(frozen_sim: SimServer) -> None:
    _, before = await call(frozen_sim, "GET", "book?venue=binance&symbol=BTC/USDT&limit=3")
    assert len(before["bids"]) == 3
    _, stepped = await call(
        frozen_sim, "POST", "step", json={"venue": "binance", "symbol": "BTC/USDT"}
    )
    assert stepped["update_ids"]["BTC/USDT"] > before["update_id"]
    await call(frozen_sim, "POST", "price", json={"asset": "BTC", "usd": 70000})
    await call(frozen_sim, "POST", "step", json={"venue": "binance", "symbol": "BTC/USDT"})
    _, moved = await call(frozen_sim, "GET", "book?venue=binance&symbol=BTC/USDT&limit=1")
    assert 69_000 < float(moved["bids"][0][0]) < 71_000
    _, okx_before = await call(frozen_sim, "GET", "book?venue=okx&symbol=ETH/USDT&limit=1")
    await call(
        frozen_sim, "POST", "dislocate", json={"venue": "okx", "symbol": "ETH/USDT", "bps": 100}
    )
    _, okx_after = await call(frozen_sim, "GET", "book?venue=okx&symbol=ETH/USDT&limit=1")
    assert float(okx_after["bids"][0][0]) > float(okx_before["bids"][0][0]) * 1.005


async def test_balances_orders_and_trades_are_visible(frozen_sim: SimServer) -> None:
    status, _ = await call(
        frozen_sim, "POST", "balances", json={"venue": "okx", "asset": "USDT", "free": "123.5"}
    )
    assert status == 200
    _, balances = await call(frozen_sim, "GET", "balances?venue=okx")
    assert balances["main"]["USDT"] == {"free": "123.5", "locked": "0"}
    async with ccxt_client(frozen_sim, "okx", websocket=False) as ex:
        await ex.load_markets()
        book = await ex.fetch_order_book("ETH/USDT", 1)
        await ex.create_order(
            "ETH/USDT",
            "limit",
            "buy",
            0.01,
            book["asks"][0][0],
            {"timeInForce": "IOC", "clientOrderId": "seen1"},
        )
    _, orders = await call(frozen_sim, "GET", "orders?venue=okx")
    assert [o["client_order_id"] for o in orders] == ["seen1"]
    assert orders[0]["status"] == "FILLED"
    assert orders[0]["fills"][0]["amount"] == "0.0100"
    _, trades = await call(frozen_sim, "GET", "trades?venue=okx")
    assert [t["client_order_id"] for t in trades] == ["seen1"]


async def test_makers_run_on_their_own_at_the_configured_rate() -> None:
    async with running_simulator(updates_per_second=200) as server:
        async with ccxt_client(server, "binance") as ex:
            await ex.load_markets()
            first = await ex.watch_order_book("BTC/USDT")
            nonce = first["nonce"]
            for _ in range(20):
                book = await ex.watch_order_book("BTC/USDT")
            assert book["nonce"] > nonce
        await call(server, "POST", "rate", json={"venue": "binance", "updates_per_second": 0})
        frozen = server.venues["binance"].update_ids["BTC/USDT"]
        status, body = await call(
            server, "POST", "rate", json={"venue": "binance", "updates_per_second": 5000}
        )
        assert status == 400
        assert body["error"] == "'updates_per_second' must be between 0 and 1000"
        assert server.venues["binance"].update_ids["BTC/USDT"] == frozen  # still frozen


async def test_a_key_without_trade_permission_cannot_trade() -> None:
    config = load_sim_config(None)
    read_only = [KeyConfig(name="reader", permissions=["read"])]
    venues = {name: v.model_copy(update={"keys": read_only}) for name, v in config.venues.items()}
    async with running_simulator(
        config.model_copy(update={"venues": venues}), updates_per_second=0
    ) as server:
        for venue in ("binance", "okx"):
            key = next(k for k in server.api_keys() if k["venue"] == venue)
            async with ccxt_client(
                server,
                venue,
                websocket=False,
                apiKey=key["apiKey"],
                secret=key["secret"],
                password=key["password"],
            ) as ex:
                await ex.load_markets()
                assert (await ex.fetch_balance())["USDT"]["total"] > 0
                # Binance answers -2015; ccxt raises it as DDoSProtection once a signed call
                # has succeeded on the client (as against the real exchange). OKX: 50120.
                expected = ccxt.DDoSProtection if venue == "binance" else ccxt.ExchangeError
                with pytest.raises(expected):
                    await ex.create_order("BTC/USDT", "limit", "buy", 0.001, 1000)
            assert server.venues[venue].orders == {}
