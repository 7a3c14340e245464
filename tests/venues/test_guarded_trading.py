"""The no-withdraw rule end to end: the real guard, the real probes, the simulator.

Layer 1: no order until the key is proven trade-only, re-proven on a timer, halt when a
key gains withdraw rights. Layer 2: the venue interface has no funds-moving operation.
Layer 3: the ccxt object refuses withdraw/transfer calls of every kind.
"""

from __future__ import annotations

import inspect
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from arbot.config import VenueConfig
from arbot.keys.guard import KeyNotTradeOnly, PermissionGuard, TradingHalted
from arbot.keys.model import KeyPermissions
from arbot.model import Order, OrderStatus, OrderType, Side, TimeInForce
from arbot.sim.server import SimServer
from arbot.store import Store
from arbot.store.records import latest_permission_checks, record_permission_check
from arbot.testing import sim_venue_config
from arbot.venues.base import Venue, cancel_all_open_orders
from arbot.venues.ccxt_venue import CcxtVenue
from arbot.venues.factory import build_exchange
from arbot.venues.guard import FUNDS_MOVEMENT, FundsMovementBlocked
from arbot.venues.paper import PaperVenue

VENUES = ["binance", "okx"]


def venue_config(
    server: SimServer, venue: str, *, withdraw: bool, allow_unverified: bool = False
) -> VenueConfig:
    return sim_venue_config(server, venue, withdraw_key=withdraw, allow_unverified=allow_unverified)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def recording_guard(
    store: Store, configs: dict[str, VenueConfig], clock: Clock | None = None, on_halt: Any = None
) -> tuple[PermissionGuard, list[str]]:
    warnings: list[str] = []

    def record(venue: str, permissions: KeyPermissions) -> None:
        credentials = configs[venue].credentials
        assert credentials is not None
        record_permission_check(
            store, venue, configs[venue].exchange, credentials.key_id, permissions
        )

    guard = PermissionGuard(
        300, record=record, on_halt=on_halt, clock=clock or Clock(), warn=warnings.append
    )
    return guard, warnings


def ioc_buy(symbol: str, price: Decimal, client_id: str, amount: str = "0.001") -> Order:
    return Order(
        client_id, "", symbol, Side.BUY, OrderType.LIMIT, Decimal(amount), price, TimeInForce.IOC
    )


async def best_ask(venue: CcxtVenue, symbol: str) -> Decimal:
    book = await venue.fetch_order_book(symbol, 5)
    assert book.best_ask is not None
    return Decimal(repr(book.best_ask))


@pytest.mark.parametrize("name", VENUES)
async def test_a_trade_only_key_is_proven_then_trades(
    frozen_sim: SimServer, tmp_path: Path, name: str
) -> None:
    with Store(f"sqlite:///{tmp_path / 'a.db'}") as store:
        configs = {name: venue_config(frozen_sim, name, withdraw=False)}
        guard, _ = recording_guard(store, configs)
        venue = CcxtVenue(name, configs[name], guard)
        try:
            await venue.load_markets()
            placed = await venue.create_order(
                ioc_buy("BTC/USDT", await best_ask(venue, "BTC/USDT"), "arb1x0")
            )
            assert placed.status is OrderStatus.FILLED
            assert placed.filled == Decimal("0.001")
            assert placed.exchange_order_id
            fills = await venue.fetch_order_fills(placed)
            assert sum(f.amount for f in fills) == Decimal("0.001")
            assert all(f.client_order_id == "arb1x0" and f.side is Side.BUY for f in fills)
            assert len({f.trade_id for f in fills}) == len(fills)
            assert all(f.fee > 0 and f.fee_currency for f in fills)
        finally:
            await venue.close()
        checks = latest_permission_checks(store)
        assert checks[name].verdict == "trade_only"
        assert checks[name].can_withdraw is False
    assert [o.client_order_id for o in frozen_sim.venues[name].orders.values()] == ["arb1x0"]
    assert frozen_sim.venues[name].withdrawals == []


@pytest.mark.parametrize("name", VENUES)
async def test_a_withdraw_key_never_gets_an_order_to_the_exchange(
    frozen_sim: SimServer, tmp_path: Path, name: str
) -> None:
    with Store(f"sqlite:///{tmp_path / 'a.db'}") as store:
        configs = {name: venue_config(frozen_sim, name, withdraw=True, allow_unverified=True)}
        guard, _ = recording_guard(store, configs)
        venue = CcxtVenue(name, configs[name], guard)
        try:
            with pytest.raises(
                KeyNotTradeOnly, match=f"{name}: refusing to trade: the key can withdraw funds"
            ):
                await venue.create_order(ioc_buy("BTC/USDT", Decimal("100000"), "arb2x0"))
        finally:
            await venue.close()
        assert latest_permission_checks(store)[name].verdict == "unsafe"
    assert frozen_sim.venues[name].orders == {}
    assert frozen_sim.venues[name].rejections == []
    assert frozen_sim.venues[name].withdrawals == []


async def test_an_unprovable_key_is_refused_unless_the_operator_opts_in(
    frozen_sim: SimServer, tmp_path: Path
) -> None:
    with Store(f"sqlite:///{tmp_path / 'a.db'}") as store:
        for allow in (False, True):
            configs = {
                "okx": venue_config(frozen_sim, "okx", withdraw=False, allow_unverified=allow)
            }
            guard, warnings = recording_guard(store, configs)
            venue = CcxtVenue("okx", configs["okx"], guard)
            try:
                await venue.load_markets()
                price = await best_ask(venue, "BTC/USDT")
                frozen_sim.venues["okx"].faults.rest_errors = [503]  # the probe call fails
                order = ioc_buy("BTC/USDT", price, f"arb3x{int(allow)}")
                if allow:
                    assert (await venue.create_order(order)).status is OrderStatus.FILLED
                    assert any("allow_unverified_key is on" in w for w in warnings)
                    assert any("trading with an unverified key" in w for w in warnings)
                else:
                    with pytest.raises(
                        KeyNotTradeOnly,
                        match=r"okx: refusing to trade: okx: privateGetAccountConfig failed: "
                        "OnMaintenance",
                    ):
                        await venue.create_order(order)
            finally:
                await venue.close()
    assert [o.client_order_id for o in frozen_sim.venues["okx"].orders.values()] == ["arb3x1"]


async def test_a_key_that_gains_withdraw_rights_halts_everything(
    frozen_sim: SimServer, tmp_path: Path
) -> None:
    clock = Clock()
    venues: list[Venue] = []

    async def cancel_everything(reason: str) -> None:
        await cancel_all_open_orders(venues)

    with Store(f"sqlite:///{tmp_path / 'a.db'}") as store:
        configs = {n: venue_config(frozen_sim, n, withdraw=False) for n in VENUES}
        guard, warnings = recording_guard(store, configs, clock, cancel_everything)
        venues.extend(CcxtVenue(n, configs[n], guard) for n in VENUES)
        binance, okx = venues
        assert isinstance(binance, CcxtVenue)
        assert isinstance(okx, CcxtVenue)
        try:
            for venue in (binance, okx):
                await venue.load_markets()
            book = await binance.fetch_order_book("BTC/USDT", 5)
            assert book.best_bid is not None
            resting = Order(
                "rest1",
                "",
                "BTC/USDT",
                Side.BUY,
                OrderType.LIMIT,
                Decimal("0.001"),
                Decimal(repr(book.best_bid)) - 50,
                TimeInForce.GTC,
            )
            assert (await binance.create_order(resting)).status is OrderStatus.OPEN

            key = frozen_sim.key("binance", withdraw=False)
            frozen_sim.set_key_permissions("binance", key["apiKey"], ["read", "trade", "withdraw"])
            clock.now += 301  # the next order is due a fresh proof
            with pytest.raises(TradingHalted, match="binance: the key gained funds-moving rights"):
                await binance.create_order(ioc_buy("BTC/USDT", Decimal("100000"), "after1"))
            with pytest.raises(TradingHalted):
                await okx.create_order(ioc_buy("BTC/USDT", Decimal("100000"), "after2"))
        finally:
            for venue in venues:
                await venue.close()
        assert latest_permission_checks(store)["binance"].verdict == "unsafe"
    orders = list(frozen_sim.venues["binance"].orders.values())
    assert [(o.client_order_id, o.status) for o in orders] == [("rest1", "CANCELED")]
    assert frozen_sim.venues["okx"].orders == {}
    assert any("all trading halted" in w for w in warnings)


async def test_no_guard_means_no_orders(frozen_sim: SimServer) -> None:
    venue = CcxtVenue("binance", venue_config(frozen_sim, "binance", withdraw=False), None)
    try:
        with pytest.raises(KeyNotTradeOnly, match="no permission guard"):
            await venue.create_order(ioc_buy("BTC/USDT", Decimal("100000"), "x1"))
    finally:
        await venue.close()
    assert frozen_sim.venues["binance"].orders == {}


def test_the_venue_interface_has_no_way_to_move_funds() -> None:
    for cls in (Venue, CcxtVenue, PaperVenue):
        names = [n for n, _ in inspect.getmembers(cls) if not n.startswith("_")]
        assert not [n for n in names if FUNDS_MOVEMENT.search(n)], cls
        assert "create_order" in names


@pytest.mark.parametrize("name", VENUES)
async def test_the_ccxt_object_refuses_every_funds_movement(
    frozen_sim: SimServer, name: str
) -> None:
    config = venue_config(frozen_sim, name, withdraw=True)
    exchange = build_exchange(name, config, config.credentials, websocket=False)
    implicit = {
        "binance": [
            "sapiPostCapitalWithdrawApply",
            "sapi_post_asset_transfer",
            "sapiPostSubAccountUniversalTransfer",
        ],
        "okx": [
            "privatePostAssetWithdrawal",
            "private_post_asset_transfer",
            "privatePostAssetSubaccountTransfer",
        ],
    }[name]
    raw_path = {
        "binance": ("capital/withdraw/apply", "sapi"),
        "okx": ("asset/withdrawal", "private"),
    }[name]
    try:
        await exchange.load_markets()
        with pytest.raises(FundsMovementBlocked, match="arbot never withdraws or transfers funds"):
            await exchange.withdraw("USDT", 10, "TXyz123456789")
        with pytest.raises(FundsMovementBlocked):
            await exchange.transfer("USDT", 10, "spot", "funding")
        for method in implicit:
            with pytest.raises(FundsMovementBlocked):
                await getattr(exchange, method)({"coin": "USDT", "amount": "1"})
        with pytest.raises(FundsMovementBlocked, match="request to"):
            await exchange.request(raw_path[0], raw_path[1], "POST", {"amount": "1"})
        balance = await exchange.fetch_balance()  # ordinary calls still work
        assert balance["USDT"]["total"] > 0
    finally:
        await exchange.close()
    assert frozen_sim.venues[name].withdrawals == []
