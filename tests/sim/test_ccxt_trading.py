"""Plain ccxt against the simulator, both protocols: markets, books, orders, balances, keys.

Every test here talks to the simulator only through an unmodified ccxt client (REST
via ``ccxt.async_support`` / ``ccxt.pro``), the way arbot and its users will.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import ccxt
import pytest

from arbot.sim.server import SimServer
from arbot.testing import ccxt_client

VENUES = ["binance", "okx"]
pytestmark = pytest.mark.parametrize("venue", VENUES)


def d(value: Any) -> Decimal:
    return Decimal(str(value))


def sim_levels(
    server: SimServer, venue: str, symbol: str, limit: int | None = None
) -> tuple[list[list[float]], list[list[float]]]:
    _, bids, asks = server.venues[venue].snapshot(symbol, limit)
    return [[float(p), float(q)] for p, q in bids], [[float(p), float(q)] for p, q in asks]


def account(server: SimServer, venue: str) -> Any:
    return server.venues[venue].accounts["main"]


async def test_load_markets_reports_the_simulated_grid(frozen_sim: SimServer, venue: str) -> None:
    async with ccxt_client(frozen_sim, venue, websocket=False) as ex:
        markets = await ex.load_markets()
        assert {"BTC/USDT", "ETH/USDT", "ETH/BTC", "SOL/USDT", "XRP/USDT"} <= set(markets)
        btc = markets["BTC/USDT"]
        assert btc["spot"] is True
        assert btc["precision"]["price"] == 0.01
        assert btc["precision"]["amount"] == 0.00001
        assert btc["limits"]["amount"]["min"] == 0.00001


async def test_rest_book_equals_the_simulators_book(frozen_sim: SimServer, venue: str) -> None:
    async with ccxt_client(frozen_sim, venue, websocket=False) as ex:
        book = await ex.fetch_order_book("ETH/USDT", 20)
        bids, asks = sim_levels(frozen_sim, venue, "ETH/USDT", 20)
        assert [level[:2] for level in book["bids"]] == bids
        assert [level[:2] for level in book["asks"]] == asks
        assert bids[0][0] < asks[0][0]
        assert len(bids) == 20


async def test_limit_ioc_and_market_orders_fill_and_move_balances_exactly(
    frozen_sim: SimServer, venue: str
) -> None:
    main = account(frozen_sim, venue)
    fee_rate = frozen_sim.venues[venue].taker_fee
    async with ccxt_client(frozen_sim, venue) as ex:
        await ex.load_markets()
        before = await ex.fetch_balance()
        assert before["USDT"]["free"] == float(main.free["USDT"])
        book = await ex.fetch_order_book("BTC/USDT", 5)
        best_ask = book["asks"][0][0]

        ioc = await ex.create_order(
            "BTC/USDT",
            "limit",
            "buy",
            0.002,
            best_ask,
            {"timeInForce": "IOC", "clientOrderId": "ioc1"},
        )
        assert ioc["clientOrderId"] == "ioc1"
        fetched = await ex.fetch_order(ioc["id"], "BTC/USDT")
        assert fetched["status"] == "closed"
        assert fetched["filled"] == 0.002
        assert fetched["average"] == best_ask
        (buy_trade,) = await ex.fetch_my_trades("BTC/USDT")
        assert buy_trade["order"] == ioc["id"]
        assert buy_trade["fee"]["currency"] == "BTC"
        buy_fee = d(buy_trade["fee"]["cost"])
        assert buy_fee == (Decimal("0.002") * fee_rate).quantize(Decimal("1E-8"))

        sell = await ex.create_order("ETH/USDT", "market", "sell", 0.5)
        sold = await ex.fetch_order(sell["id"], "ETH/USDT")
        assert sold["status"] == "closed"
        assert sold["filled"] == 0.5

        trades = await ex.fetch_my_trades("ETH/USDT")
        assert [t["order"] for t in trades] == [sell["id"]] * len(trades)
        proceeds = sum(d(t["price"]) * d(t["amount"]) for t in trades)
        fees = sum(d(t["fee"]["cost"]) for t in trades)
        assert all(t["fee"]["currency"] == "USDT" and t["takerOrMaker"] == "taker" for t in trades)

        after = await ex.fetch_balance()
        btc_delta = d(after["BTC"]["total"]) - d(before["BTC"]["total"])
        assert btc_delta == Decimal("0.002") - buy_fee
        expected_usdt = (
            d(before["USDT"]["total"]) - Decimal("0.002") * d(best_ask) + proceeds - fees
        )
        assert d(after["USDT"]["total"]) == expected_usdt
        assert d(after["ETH"]["total"]) == d(before["ETH"]["total"]) - Decimal("0.5")


async def test_ioc_beyond_the_top_level_fills_partly_then_expires(
    frozen_sim: SimServer, venue: str
) -> None:
    async with ccxt_client(frozen_sim, venue, websocket=False) as ex:
        await ex.load_markets()
        book = await ex.fetch_order_book("BTC/USDT", 5)
        price, size = book["asks"][0][:2]
        order = await ex.create_order(
            "BTC/USDT", "limit", "buy", round(size * 3, 5), price, {"timeInForce": "IOC"}
        )
        fetched = await ex.fetch_order(order["id"], "BTC/USDT")
        assert fetched["filled"] == size
        assert fetched["status"] == ("expired" if venue == "binance" else "canceled")
        assert await ex.fetch_open_orders("BTC/USDT") == []


async def test_resting_order_is_open_then_cancelled_and_funds_unlocked(
    frozen_sim: SimServer, venue: str
) -> None:
    async with ccxt_client(frozen_sim, venue, websocket=False) as ex:
        await ex.load_markets()
        book = await ex.fetch_order_book("BTC/USDT", 5)
        low = round(book["bids"][-1][0] - 100, 2)
        free_before = (await ex.fetch_balance())["USDT"]["free"]
        order = await ex.create_order(
            "BTC/USDT", "limit", "buy", 0.01, low, {"clientOrderId": "rest1"}
        )
        open_orders = await ex.fetch_open_orders("BTC/USDT")
        assert [o["id"] for o in open_orders] == [order["id"]]
        assert open_orders[0]["status"] == "open"
        locked = await ex.fetch_balance()
        assert d(locked["USDT"]["used"]) == Decimal("0.01") * d(low)
        assert d(locked["USDT"]["free"]) == d(free_before) - Decimal("0.01") * d(low)
        sim_bids, _ = sim_levels(frozen_sim, venue, "BTC/USDT")
        assert [low, 0.01] in sim_bids  # the order is in the simulator's public book

        await ex.cancel_order(order["id"], "BTC/USDT")
        assert (await ex.fetch_order(order["id"], "BTC/USDT"))["status"] == "canceled"
        assert await ex.fetch_open_orders("BTC/USDT") == []
        assert (await ex.fetch_balance())["USDT"]["free"] == free_before
        with pytest.raises(ccxt.OrderNotFound):
            await ex.cancel_order(order["id"], "BTC/USDT")


async def test_resting_order_fills_as_maker_when_the_market_comes_to_it(
    frozen_sim: SimServer, venue: str
) -> None:
    async with ccxt_client(frozen_sim, venue, websocket=False) as ex:
        await ex.load_markets()
        book = await ex.fetch_order_book("BTC/USDT", 5)
        ask = round(book["asks"][0][0] + 5, 2)
        order = await ex.create_order("BTC/USDT", "limit", "sell", 0.01, ask)
        frozen_sim.makers[venue].dislocate("BTC/USDT", 50)  # quotes jump 50 bps up
        frozen_sim.step(venue, symbol="BTC/USDT")
        filled = await ex.fetch_order(order["id"], "BTC/USDT")
        assert filled["status"] == "closed"
        assert filled["average"] == ask
        trades = await ex.fetch_my_trades("BTC/USDT")
        assert trades[-1]["takerOrMaker"] == "maker"
        maker_fee = frozen_sim.venues[venue].maker_fee
        assert d(trades[-1]["fee"]["cost"]) == (Decimal("0.01") * d(ask) * maker_fee).quantize(
            Decimal("1E-8")
        )


async def test_order_rejections_map_to_ccxt_exceptions(frozen_sim: SimServer, venue: str) -> None:
    async with ccxt_client(frozen_sim, venue, websocket=False) as ex:
        await ex.load_markets()
        book = await ex.fetch_order_book("BTC/USDT", 5)
        with pytest.raises(ccxt.InsufficientFunds):
            await ex.create_order("BTC/USDT", "limit", "buy", 100, book["asks"][0][0])
        low = round(book["bids"][-1][0] - 100, 2)
        await ex.create_order("BTC/USDT", "limit", "buy", 0.001, low, {"clientOrderId": "dup1"})
        with pytest.raises(ccxt.InvalidOrder):
            await ex.create_order("BTC/USDT", "limit", "buy", 0.001, low, {"clientOrderId": "dup1"})
        rejected = frozen_sim.venues[venue].rejections
        assert [r.reason for r in rejected] == ["insufficient_balance", "duplicate_client_id"]


async def test_permission_endpoint_reports_each_keys_rights(
    frozen_sim: SimServer, venue: str
) -> None:
    for withdraw in (False, True):
        async with ccxt_client(frozen_sim, venue, websocket=False, withdraw_key=withdraw) as ex:
            if venue == "binance":
                answer = await ex.sapiGetAccountApiRestrictions()
                assert answer["enableWithdrawals"] is withdraw
                assert answer["enableInternalTransfer"] is withdraw
                assert answer["enableSpotAndMarginTrading"] is True
                assert answer["enableReading"] is True
                assert answer["ipRestrict"] is False
            else:
                answer = await ex.privateGetAccountConfig()
                perm = answer["data"][0]["perm"].split(",")
                assert ("withdraw" in perm) is withdraw
                assert {"read_only", "trade"} <= set(perm)
                assert answer["data"][0]["ip"] == ""


@pytest.mark.sim_withdrawals_expected
async def test_every_withdraw_attempt_is_recorded(frozen_sim: SimServer, venue: str) -> None:
    assert frozen_sim.venues[venue].withdrawals == []
    async with ccxt_client(frozen_sim, venue, websocket=False) as ex:
        await ex.load_markets()
        with pytest.raises(ccxt.BaseError):
            await ex.withdraw("USDT", 10, "TXyz123456789")
    async with ccxt_client(frozen_sim, venue, websocket=False, withdraw_key=True) as ex:
        await ex.load_markets()
        await ex.withdraw("USDT", 10, "TXyz123456789")
    attempts = frozen_sim.venues[venue].withdrawals
    assert [(a.kind, a.permitted, a.asset) for a in attempts] == [
        ("withdraw", False, "USDT"),
        ("withdraw", True, "USDT"),
    ]
    keys = {k["apiKey"]: k["name"] for k in frozen_sim.api_keys()}
    assert [keys[a.api_key] for a in attempts] == ["trade", "withdraw"]


async def test_wrong_secret_is_an_authentication_error(frozen_sim: SimServer, venue: str) -> None:
    async with ccxt_client(frozen_sim, venue, websocket=False, secret="0" * 32) as ex:
        with pytest.raises(ccxt.AuthenticationError):
            await ex.fetch_balance()
    async with ccxt_client(frozen_sim, venue, websocket=False, apiKey="unknown-key") as ex:
        with pytest.raises(ccxt.AuthenticationError):
            await ex.fetch_balance()
