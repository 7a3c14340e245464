"""The control API under ``/_sim/``: JSON endpoints that script scenarios from tests.

Documented in ``docs/sim.md``. Every endpoint answers JSON; a bad request gets HTTP 400
with ``{"error": "..."}`` naming the problem.
"""

from __future__ import annotations

import json
import time
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from aiohttp import web
from pydantic import ValidationError

from arbot.sim.book import SimOrder
from arbot.sim.venue import SimVenue

if TYPE_CHECKING:
    from arbot.sim.server import SimServer


class BadRequest(Exception):
    pass


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: json.dumps(d, default=str))


def order_view(venue: SimVenue, order: SimOrder) -> dict[str, Any]:
    market = venue.markets[order.symbol]
    trades = [
        t for t in venue.trades if t.order_id == order.order_id and t.account == order.account
    ]
    return {
        "venue": venue.name,
        "order_id": order.order_id,
        "client_order_id": order.client_order_id,
        "symbol": order.symbol,
        "side": order.side,
        "type": order.type,
        "time_in_force": order.time_in_force,
        "price": None if order.price is None else market.price_text(order.price),
        "amount": market.amount_text(order.amount),
        "filled": market.amount_text(order.filled),
        "quote_filled": str(order.quote_filled),
        "status": order.status,
        "created_ms": order.created_ms,
        "updated_ms": order.updated_ms,
        "fills": [
            {
                "trade_id": t.trade_id,
                "price": str(t.price),
                "amount": str(t.amount),
                "fee": str(t.fee),
                "fee_asset": t.fee_asset,
                "is_maker": t.is_maker,
                "time_ms": t.time_ms,
            }
            for t in trades
        ],
    }


class ControlApi:
    """Handlers of every ``/_sim/`` endpoint for one :class:`SimServer`."""

    def __init__(self, server: SimServer) -> None:
        self.server = server

    def venue_of(self, request: web.Request, body: dict[str, Any] | None = None) -> SimVenue:
        name = (body or {}).get("venue") or request.query.get("venue")
        if not name:
            raise BadRequest("missing 'venue'")
        venue = self.server.venues.get(str(name))
        if venue is None:
            raise BadRequest(f"unknown venue {name!r}; venues: {', '.join(self.server.venues)}")
        return venue

    @staticmethod
    async def body_of(request: web.Request) -> dict[str, Any]:
        try:
            data = await request.json()
        except (json.JSONDecodeError, ValueError):
            raise BadRequest("body must be a JSON object") from None
        if not isinstance(data, dict):
            raise BadRequest("body must be a JSON object")
        return data

    @staticmethod
    def decimal_field(body: dict[str, Any], name: str) -> Decimal:
        try:
            return Decimal(str(body[name]))
        except KeyError:
            raise BadRequest(f"missing {name!r}") from None
        except InvalidOperation:
            raise BadRequest(f"{name!r} must be a number") from None

    @staticmethod
    @web.middleware
    async def errors(request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            response: web.StreamResponse = await handler(request)
        except BadRequest as exc:
            return _json({"error": str(exc)}, status=400)
        return response

    async def venues(self, request: web.Request) -> web.Response:
        return _json(
            [
                {
                    "venue": name,
                    "protocol": venue.protocol,
                    "symbols": list(venue.markets),
                    "endpoint": self.server.venue_url(name),
                    "urls": self.server.urls(name),
                    "updates_per_second": self.server.rates[name],
                }
                for name, venue in self.server.venues.items()
            ]
        )

    async def keys(self, request: web.Request) -> web.Response:
        return _json(self.server.api_keys())

    async def set_key(self, request: web.Request) -> web.Response:
        body = await self.body_of(request)
        venue = self.venue_of(request, body)
        permissions = body.get("permissions")
        if not isinstance(permissions, list) or not all(isinstance(p, str) for p in permissions):
            raise BadRequest('\'permissions\' must be a list such as ["read", "trade"]')
        try:
            self.server.set_key_permissions(venue.name, str(body.get("apiKey", "")), permissions)
        except (KeyError, ValueError) as exc:
            raise BadRequest(str(exc).strip("'\"")) from None
        return _json({"ok": True})

    async def orders(self, request: web.Request) -> web.Response:
        venue = self.venue_of(request)
        out = [order_view(venue, o) for o in venue.orders.values() if o.account is not None]
        rejected: list[dict[str, Any]] = [
            {
                "venue": venue.name,
                "order_id": None,
                "client_order_id": r.client_order_id,
                "symbol": r.symbol,
                "side": r.side,
                "type": r.type,
                "time_in_force": r.time_in_force,
                "price": r.price,
                "amount": r.amount,
                "status": "REJECTED",
                "reason": r.reason,
                "created_ms": r.time_ms,
                "fills": [],
            }
            for r in venue.rejections
        ]
        return _json(out + rejected)

    async def trades(self, request: web.Request) -> web.Response:
        venue = self.venue_of(request)
        return _json(
            [
                {
                    "trade_id": t.trade_id,
                    "order_id": t.order_id,
                    "client_order_id": t.client_order_id,
                    "symbol": t.symbol,
                    "side": t.side,
                    "price": str(t.price),
                    "amount": str(t.amount),
                    "quote_amount": str(t.quote_amount),
                    "fee": str(t.fee),
                    "fee_asset": t.fee_asset,
                    "is_maker": t.is_maker,
                    "time_ms": t.time_ms,
                }
                for t in venue.trades
            ]
        )

    async def withdrawals(self, request: web.Request) -> web.Response:
        return _json(
            [
                {
                    "venue": w.venue,
                    "kind": w.kind,
                    "apiKey": w.api_key,
                    "asset": w.asset,
                    "amount": w.amount,
                    "destination": w.destination,
                    "permitted": w.permitted,
                    "time_ms": w.time_ms,
                }
                for venue in self.server.venues.values()
                for w in venue.withdrawals
            ]
        )

    async def balances(self, request: web.Request) -> web.Response:
        venue = self.venue_of(request)
        return _json(
            {
                name: {
                    asset: {
                        "free": str(account.free.get(asset, 0)),
                        "locked": str(account.locked.get(asset, 0)),
                    }
                    for asset in sorted(set(account.free) | set(account.locked))
                }
                for name, account in venue.accounts.items()
            }
        )

    async def set_balance(self, request: web.Request) -> web.Response:
        body = await self.body_of(request)
        venue = self.venue_of(request, body)
        asset = str(body.get("asset", ""))
        if not asset:
            raise BadRequest("missing 'asset'")
        free = self.decimal_field(body, "free")
        venue.set_balance(str(body.get("account", "main")), asset, free)
        return _json({"ok": True})

    async def book(self, request: web.Request) -> web.Response:
        venue = self.venue_of(request)
        symbol = request.query.get("symbol", "")
        if symbol not in venue.markets:
            raise BadRequest(f"unknown symbol {symbol!r}")
        limit = int(request.query.get("limit", "0")) or None
        update_id, bids, asks = venue.snapshot(symbol, limit)
        return _json({"symbol": symbol, "update_id": update_id, "bids": bids, "asks": asks})

    async def move_price(self, request: web.Request) -> web.Response:
        body = await self.body_of(request)
        asset = str(body.get("asset", ""))
        if asset not in self.server.fair.assets():
            raise BadRequest(
                f"unknown asset {asset!r}; assets: {', '.join(self.server.fair.assets())}"
            )
        self.server.fair.set_usd(asset, float(self.decimal_field(body, "usd")))
        return _json({"ok": True})

    async def dislocate(self, request: web.Request) -> web.Response:
        body = await self.body_of(request)
        venue = self.venue_of(request, body)
        symbol = str(body.get("symbol", ""))
        if symbol not in venue.markets:
            raise BadRequest(f"unknown symbol {symbol!r}")
        self.server.makers[venue.name].dislocate(symbol, float(self.decimal_field(body, "bps")))
        self.server.makers[venue.name].requote(symbol, time.time())
        return _json({"ok": True})

    async def get_faults(self, request: web.Request) -> web.Response:
        return _json(self.venue_of(request).faults.model_dump())

    async def set_faults(self, request: web.Request) -> web.Response:
        body = await self.body_of(request)
        venue = self.venue_of(request, body)
        changes = {k: v for k, v in body.items() if k != "venue"}
        try:
            venue.faults.update(changes)
        except ValidationError as exc:
            raise BadRequest(_first_error(exc)) from None
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        venue.notify_faults()
        return _json(venue.faults.model_dump())

    async def clear_faults(self, request: web.Request) -> web.Response:
        venue = self.venue_of(request)
        venue.faults.clear()
        venue.notify_faults()
        return _json(venue.faults.model_dump())

    async def drop(self, request: web.Request) -> web.Response:
        body = await self.body_of(request)
        venue = self.venue_of(request, body)
        connections = list(self.server.protocols[venue.name].connections)
        for connection in connections:
            connection.close_soon()
        return _json({"dropped": len(connections)})

    async def step(self, request: web.Request) -> web.Response:
        body = await self.body_of(request)
        venue = self.venue_of(request, body)
        symbol = body.get("symbol")
        if symbol is not None and symbol not in venue.markets:
            raise BadRequest(f"unknown symbol {symbol!r}")
        self.server.step(venue.name, int(body.get("count", 1)), symbol)
        return _json({"update_ids": venue.update_ids})

    async def rate(self, request: web.Request) -> web.Response:
        body = await self.body_of(request)
        venue = self.venue_of(request, body)
        value = float(self.decimal_field(body, "updates_per_second"))
        if not 0 <= value <= 1000:
            raise BadRequest("'updates_per_second' must be between 0 and 1000")
        self.server.set_rate(venue.name, value)
        return _json({"updates_per_second": value})

    def app(self) -> web.Application:
        control = web.Application(middlewares=[self.errors])
        control.add_routes(
            [
                web.get("/venues", self.venues),
                web.get("/keys", self.keys),
                web.post("/keys", self.set_key),
                web.get("/orders", self.orders),
                web.get("/trades", self.trades),
                web.get("/withdrawals", self.withdrawals),
                web.get("/balances", self.balances),
                web.post("/balances", self.set_balance),
                web.get("/book", self.book),
                web.post("/price", self.move_price),
                web.post("/dislocate", self.dislocate),
                web.get("/faults", self.get_faults),
                web.post("/faults", self.set_faults),
                web.delete("/faults", self.clear_faults),
                web.post("/drop", self.drop),
                web.post("/step", self.step),
                web.post("/rate", self.rate),
            ]
        )
        return control


def add_control_routes(server: SimServer) -> None:
    """Mount the control API under ``/_sim/`` on the server's app."""
    server.app.add_subapp("/_sim/", ControlApi(server).app())


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    return f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"
