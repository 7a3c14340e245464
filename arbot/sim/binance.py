"""The Binance spot wire protocol: REST ``/api/v3``, ``/sapi/v1`` and the diff-depth websocket.

Shapes, error codes and HTTP statuses follow Binance's documentation and what ccxt
reads (see ``docs/sim.md``). Signed requests carry ``X-MBX-APIKEY`` and an HMAC-SHA256
hex signature over the raw query string (or form body) before ``&signature=``, with a
``timestamp`` inside ``recvWindow`` of the venue clock.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

from arbot.sim import venue as v
from arbot.sim._http import hmac_hex, json_response, raw_query, same
from arbot.sim.book import SimOrder
from arbot.sim.venue import BookDiff, SimKey, SimReject, SimTrade, SimVenue
from arbot.sim.wsconn import WsConnection

MAX_RECV_WINDOW = 60_000
DEFAULT_RECV_WINDOW = 5_000
ORDER_TYPES = ["LIMIT", "LIMIT_MAKER", "MARKET"]
TIME_IN_FORCE = ("GTC", "IOC", "FOK")

# Reject kinds → (code, message); every one is HTTP 400 on Binance.
REJECTS: dict[str, tuple[int, str]] = {
    v.UNKNOWN_SYMBOL: (-1121, "Invalid symbol."),
    v.BAD_AMOUNT: (-1013, "Filter failure: LOT_SIZE"),
    v.MIN_AMOUNT: (-1013, "Filter failure: LOT_SIZE"),
    v.MAX_AMOUNT: (-1013, "Filter failure: LOT_SIZE"),
    v.BAD_PRICE: (-1013, "Filter failure: PRICE_FILTER"),
    v.MIN_NOTIONAL: (-1013, "Filter failure: NOTIONAL"),
    v.INSUFFICIENT_BALANCE: (-2010, "Account has insufficient balance for requested action."),
    v.DUPLICATE_CLIENT_ID: (-2010, "Duplicate order sent."),
    v.REJECTED_BY_FAULT: (-1013, "Filter failure: PERCENT_PRICE_BY_SIDE"),
    v.NO_LIQUIDITY: (-2010, "Order book liquidity is less than LOT_SIZE filter minimum quantity."),
    v.WOULD_TAKE: (-2010, "Order would immediately match and take."),
}


class BinanceError(Exception):
    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.status = status


Handler = Callable[[web.Request, dict[str, str], SimKey], Awaitable[Any]]


def _fmt(value: Decimal) -> str:
    """Binance's fixed 8 decimals, or more when a value is finer (a replayed odd grid)."""
    text = format(value, ".8f")
    if Decimal(text) != value:
        text = format(value.normalize(), "f")
    return text


class BinanceProtocol:
    """Serves one venue in the Binance spot protocol."""

    def __init__(self, venue: SimVenue) -> None:
        self.venue = venue
        self.connections: set[WsConnection] = set()
        self._book_subscribers: dict[str, set[WsConnection]] = {s: set() for s in venue.markets}
        self._stream_names = {
            f"{m.exchange_id.lower()}@depth": symbol for symbol, m in venue.markets.items()
        }
        for symbol in venue.markets:
            venue.subscribe(symbol, self._on_diff)

    def urls(self, base: str) -> dict[str, str]:
        return {"rest": base, "ws": base.replace("http://", "ws://", 1) + "/stream/ws"}

    def add_routes(self, app: web.Application, prefix: str) -> None:
        api = f"{prefix}/api/v3"
        sapi = f"{prefix}/sapi/v1"
        app.add_routes(
            [
                web.get(f"{api}/ping", self._public(self.ping)),
                web.get(f"{api}/time", self._public(self.time)),
                web.get(f"{api}/exchangeInfo", self._public(self.exchange_info)),
                web.get(f"{api}/depth", self._public(self.depth)),
                web.get(f"{api}/account", self._signed(self.account, "read")),
                web.post(f"{api}/order", self._signed(self.new_order, "trade")),
                web.delete(f"{api}/order", self._signed(self.cancel_order, "trade")),
                web.get(f"{api}/order", self._signed(self.get_order, "read")),
                web.get(f"{api}/openOrders", self._signed(self.open_orders, "read")),
                web.delete(f"{api}/openOrders", self._signed(self.cancel_all, "trade")),
                web.get(f"{api}/myTrades", self._signed(self.my_trades, "read")),
                web.get(
                    f"{sapi}/account/apiRestrictions", self._signed(self.api_restrictions, "read")
                ),
                web.post(f"{sapi}/capital/withdraw/apply", self._signed(self.withdraw, None)),
                web.post(f"{sapi}/asset/transfer", self._signed(self.transfer, None)),
                web.get(prefix + "/stream/ws{tail:.*}", self.websocket),
                web.get(prefix + "/ws{tail:.*}", self.websocket),
            ]
        )

    def fault_response(self, status: int) -> web.Response:
        retry = {"Retry-After": str(self.venue.faults.retry_after_s)}
        if status == 429:
            body = {
                "code": -1003,
                "msg": "Too much request weight used; current limit is 6000 "
                "request weight per 1 MINUTE. Please use WebSocket Streams for live updates "
                "to avoid polling the API.",
            }
            return json_response(body, 429, retry)
        if status == 418:
            until = self.venue.now_ms() + self.venue.faults.retry_after_s * 1000
            body = {
                "code": -1003,
                "msg": f"Way too much request weight used; IP banned until {until}. "
                "Please use WebSocket Streams for live updates to avoid bans.",
            }
            return json_response(body, 418, retry)
        if status >= 500:
            return web.Response(
                status=status,
                text="<html><body><h1>Service Unavailable</h1></body></html>",
                content_type="text/html",
            )
        return json_response(
            {"code": -1000, "msg": "An unknown error occurred while processing the request."},
            status,
        )

    # ----- request plumbing -----------------------------------------------------------

    def _public(
        self, handler: Callable[[web.Request, dict[str, str]], Awaitable[Any]]
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def wrapped(request: web.Request) -> web.Response:
            params = dict(parse_qsl(raw_query(request), keep_blank_values=True))
            try:
                return json_response(await handler(request, params))
            except BinanceError as exc:
                return json_response({"code": exc.code, "msg": exc.msg}, exc.status)

        return wrapped

    def _signed(
        self, handler: Handler, permission: str | None
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def wrapped(request: web.Request) -> web.Response:
            try:
                body = (await request.read()).decode("utf-8", "replace")
                key, params = self._authenticate(request, body)
                if permission is not None and permission not in key.permissions:
                    raise BinanceError(
                        -2015, "Invalid API-key, IP, or permissions for action.", 401
                    )
                return json_response(await handler(request, params, key))
            except BinanceError as exc:
                return json_response({"code": exc.code, "msg": exc.msg}, exc.status)

        return wrapped

    def _authenticate(self, request: web.Request, body: str) -> tuple[SimKey, dict[str, str]]:
        api_key = request.headers.get("X-MBX-APIKEY", "")
        if not api_key:
            raise BinanceError(-2014, "API-key format invalid.", 401)
        key = self.venue.keys.get(api_key)
        if key is None:
            raise BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        query = raw_query(request)
        total = query + body if query and body else (query or body)
        payload, marker, signature = total.rpartition("&signature=")
        if not marker:
            if total.startswith("signature="):
                payload, signature = "", total[len("signature=") :]
            else:
                raise BinanceError(
                    -1102,
                    "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.",
                )
        params = dict(parse_qsl(payload, keep_blank_values=True))
        try:
            timestamp = int(params["timestamp"])
        except (KeyError, ValueError):
            raise BinanceError(
                -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed."
            ) from None
        try:
            recv_window = int(params.get("recvWindow", DEFAULT_RECV_WINDOW))
        except ValueError:
            raise BinanceError(
                -1100,
                "Illegal characters found in parameter 'recvWindow'; legal range is '^[0-9]{1,20}$'.",
            ) from None
        if recv_window > MAX_RECV_WINDOW:
            raise BinanceError(-1131, "recvWindow must be less than 60000")
        now = self.venue.now_ms()
        if timestamp >= now + 1000:
            raise BinanceError(
                -1021, "Timestamp for this request was 1000ms ahead of the server's time."
            )
        if now - timestamp > recv_window:
            raise BinanceError(-1021, "Timestamp for this request is outside of the recvWindow.")
        if not same(hmac_hex(key.secret, payload), signature.split("&", 1)[0]):
            raise BinanceError(-1022, "Signature for this request is not valid.")
        return key, params

    def _market(self, params: dict[str, str]) -> v.SimMarket:
        exchange_id = params.get("symbol", "")
        if not exchange_id:
            raise BinanceError(
                -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."
            )
        market = self.venue.by_exchange_id.get(exchange_id)
        if market is None or exchange_id != market.exchange_id:
            raise BinanceError(-1121, "Invalid symbol.")
        return market

    @staticmethod
    def _decimal(params: dict[str, str], name: str) -> Decimal | None:
        raw = params.get(name)
        if raw in (None, ""):
            return None
        try:
            value = Decimal(raw)
        except InvalidOperation:
            raise BinanceError(
                -1100,
                f"Illegal characters found in parameter '{name}'; legal range is '^([0-9]{{1,20}})(\\.[0-9]{{1,20}})?$'.",
            ) from None
        if not value.is_finite():
            raise BinanceError(-1100, f"Illegal characters found in parameter '{name}'.")
        return value

    # ----- public endpoints -----------------------------------------------------------

    async def ping(self, request: web.Request, params: dict[str, str]) -> Any:
        return {}

    async def time(self, request: web.Request, params: dict[str, str]) -> Any:
        return {"serverTime": self.venue.now_ms()}

    async def exchange_info(self, request: web.Request, params: dict[str, str]) -> Any:
        symbols = []
        for market in self.venue.markets.values():
            symbols.append(
                {
                    "symbol": market.exchange_id,
                    "status": "TRADING",
                    "baseAsset": market.base,
                    "baseAssetPrecision": 8,
                    "quoteAsset": market.quote,
                    "quotePrecision": 8,
                    "quoteAssetPrecision": 8,
                    "baseCommissionPrecision": 8,
                    "quoteCommissionPrecision": 8,
                    "orderTypes": ORDER_TYPES,
                    "icebergAllowed": False,
                    "ocoAllowed": False,
                    "quoteOrderQtyMarketAllowed": True,
                    "allowTrailingStop": False,
                    "cancelReplaceAllowed": False,
                    "isSpotTradingAllowed": True,
                    "isMarginTradingAllowed": False,
                    "filters": [
                        {
                            "filterType": "PRICE_FILTER",
                            "minPrice": _fmt(market.tick),
                            "maxPrice": "1000000.00000000",
                            "tickSize": _fmt(market.tick),
                        },
                        {
                            "filterType": "LOT_SIZE",
                            "minQty": _fmt(market.min_amount),
                            "maxQty": _fmt(market.max_amount),
                            "stepSize": _fmt(market.lot),
                        },
                        {
                            "filterType": "NOTIONAL",
                            "minNotional": _fmt(market.min_notional),
                            "applyMinToMarket": True,
                            "maxNotional": "9000000.00000000",
                            "applyMaxToMarket": False,
                            "avgPriceMins": 5,
                        },
                    ],
                    "permissions": [],
                    "permissionSets": [["SPOT"]],
                    "defaultSelfTradePreventionMode": "NONE",
                    "allowedSelfTradePreventionModes": ["NONE"],
                }
            )
        return {
            "timezone": "UTC",
            "serverTime": self.venue.now_ms(),
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": 6000,
                },
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
            ],
            "exchangeFilters": [],
            "symbols": symbols,
        }

    async def depth(self, request: web.Request, params: dict[str, str]) -> Any:
        market = self._market(params)
        try:
            limit = int(params.get("limit", "100"))
        except ValueError:
            raise BinanceError(-1100, "Illegal characters found in parameter 'limit'.") from None
        if not 1 <= limit <= 5000:
            raise BinanceError(
                -1100, "Illegal characters found in parameter 'limit'; legal range is '1-5000'."
            )
        last, bids, asks = self.venue.snapshot(market.symbol, limit)
        return {"lastUpdateId": last, "bids": bids, "asks": asks}

    # ----- account and orders ---------------------------------------------------------

    async def account(self, request: web.Request, params: dict[str, str], key: SimKey) -> Any:
        account = self.venue.accounts[key.account]
        assets = sorted(set(account.free) | set(account.locked))
        return {
            "makerCommission": int(self.venue.maker_fee * 10_000),
            "takerCommission": int(self.venue.taker_fee * 10_000),
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {
                "maker": _fmt(self.venue.maker_fee),
                "taker": _fmt(self.venue.taker_fee),
                "buyer": "0.00000000",
                "seller": "0.00000000",
            },
            "canTrade": "trade" in key.permissions,
            "canWithdraw": "withdraw" in key.permissions,
            "canDeposit": True,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": self.venue.now_ms(),
            "accountType": "SPOT",
            "balances": [
                {
                    "asset": a,
                    "free": _fmt(account.free.get(a, Decimal(0))),
                    "locked": _fmt(account.locked.get(a, Decimal(0))),
                }
                for a in assets
            ],
            "permissions": ["SPOT"],
            "uid": abs(hash(key.account)) % 10**9,
        }

    async def new_order(self, request: web.Request, params: dict[str, str], key: SimKey) -> Any:
        market = self._market(params)
        side = params.get("side", "")
        if side not in ("BUY", "SELL"):
            raise BinanceError(
                -1100 if side else -1102,
                "Mandatory parameter 'side' was not sent, was empty/null, or malformed."
                if not side
                else "Illegal characters found in parameter 'side'; legal range is 'BUY, SELL'.",
            )
        order_type = params.get("type", "")
        if order_type not in ORDER_TYPES:
            raise BinanceError(-1116, "Invalid orderType.")
        client_id = params.get("newClientOrderId") or f"sim{uuid.uuid4().hex[:19]}"
        if not (1 <= len(client_id) <= 36) or not all(c.isalnum() or c in "-_." for c in client_id):
            raise BinanceError(
                -1100,
                "Illegal characters found in parameter 'newClientOrderId'; legal range is '^[a-zA-Z0-9-_.]{1,36}$'.",
            )
        quantity = self._decimal(params, "quantity")
        quote_qty = self._decimal(params, "quoteOrderQty")
        price = self._decimal(params, "price")
        tif = params.get("timeInForce", "")
        if order_type == "LIMIT":
            if tif not in TIME_IN_FORCE:
                raise BinanceError(
                    -1102,
                    "Mandatory parameter 'timeInForce' was not sent, was empty/null, or malformed.",
                )
            if price is None:
                raise BinanceError(
                    -1102, "Mandatory parameter 'price' was not sent, was empty/null, or malformed."
                )
            if quantity is None:
                raise BinanceError(
                    -1102,
                    "Mandatory parameter 'quantity' was not sent, was empty/null, or malformed.",
                )
        elif order_type == "LIMIT_MAKER":
            if price is None or quantity is None:
                raise BinanceError(
                    -1102, "Mandatory parameter 'price' was not sent, was empty/null, or malformed."
                )
            tif = "GTC"
        else:
            if tif:
                raise BinanceError(-1106, "Parameter 'timeInForce' sent when not required.")
            if price is not None:
                raise BinanceError(-1106, "Parameter 'price' sent when not required.")
            if (quantity is None) == (quote_qty is None):
                raise BinanceError(
                    -1102,
                    "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!",
                )
            tif = "IOC"
        try:
            order = self.venue.place_order(
                key.account,
                market.symbol,
                side.lower(),
                "market" if order_type == "MARKET" else "limit",
                quantity,
                price,
                tif,
                client_id,
                quote_qty,
                post_only=order_type == "LIMIT_MAKER",
            )
        except SimReject as exc:
            code, msg = REJECTS[exc.kind]
            raise BinanceError(code, msg) from None
        view = self._order_view(order, full=True)
        response_type = params.get("newOrderRespType", "FULL")
        if response_type == "ACK":
            return {
                k: view[k]
                for k in ("symbol", "orderId", "orderListId", "clientOrderId", "transactTime")
            }
        if response_type == "RESULT":
            view.pop("fills")
        return view

    def _find(
        self, params: dict[str, str], key: SimKey, market: v.SimMarket, not_found: tuple[int, str]
    ) -> SimOrder:
        order_id = params.get("orderId")
        client_id = params.get("origClientOrderId", "")
        if not order_id and not client_id:
            raise BinanceError(
                -1102,
                "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
            )
        try:
            return self.venue.find_order(
                key.account, market.symbol, int(order_id) if order_id else None, client_id
            )
        except (SimReject, ValueError):
            raise BinanceError(*not_found) from None

    async def cancel_order(self, request: web.Request, params: dict[str, str], key: SimKey) -> Any:
        market = self._market(params)
        order = self._find(params, key, market, (-2011, "Unknown order sent."))
        try:
            self.venue.cancel_order(key.account, market.symbol, order)
        except SimReject:
            raise BinanceError(-2011, "Unknown order sent.") from None
        view = self._order_view(order, full=False)
        view["origClientOrderId"] = order.client_order_id
        view["clientOrderId"] = params.get("newClientOrderId") or f"sim{uuid.uuid4().hex[:19]}"
        view["transactTime"] = order.updated_ms
        return view

    async def cancel_all(self, request: web.Request, params: dict[str, str], key: SimKey) -> Any:
        market = self._market(params)
        out = []
        for order in self.venue.open_orders(key.account, market.symbol):
            self.venue.cancel_order(key.account, market.symbol, order)
            view = self._order_view(order, full=False)
            view["origClientOrderId"] = order.client_order_id
            out.append(view)
        return out

    async def get_order(self, request: web.Request, params: dict[str, str], key: SimKey) -> Any:
        market = self._market(params)
        return self._query_view(self._find(params, key, market, (-2013, "Order does not exist.")))

    async def open_orders(self, request: web.Request, params: dict[str, str], key: SimKey) -> Any:
        symbol = self._market(params).symbol if params.get("symbol") else None
        return [self._query_view(o) for o in self.venue.open_orders(key.account, symbol)]

    async def my_trades(self, request: web.Request, params: dict[str, str], key: SimKey) -> Any:
        market = self._market(params)
        trades = self.venue.account_trades(key.account, market.symbol)
        if params.get("orderId"):
            trades = [t for t in trades if str(t.order_id) == params["orderId"]]
        if params.get("startTime"):
            trades = [t for t in trades if t.time_ms >= int(params["startTime"])]
        if params.get("endTime"):
            trades = [t for t in trades if t.time_ms <= int(params["endTime"])]
        if params.get("fromId"):
            trades = [t for t in trades if t.trade_id >= int(params["fromId"])]
        limit = min(int(params.get("limit", "500")), 1000)
        return [self._trade_view(t) for t in trades[:limit]]

    async def api_restrictions(
        self, request: web.Request, params: dict[str, str], key: SimKey
    ) -> Any:
        perms = key.permissions
        return {
            "ipRestrict": key.ip_restricted,
            "createTime": key.created_ms,
            "enableReading": "read" in perms,
            "enableWithdrawals": "withdraw" in perms,
            "enableInternalTransfer": "transfer" in perms,
            "enableMargin": False,
            "enableFutures": False,
            "permitsUniversalTransfer": "transfer" in perms,
            "enableVanillaOptions": False,
            "enableFixApiTrade": False,
            "enableFixReadOnly": False,
            "enableSpotAndMarginTrading": "trade" in perms,
            "enablePortfolioMarginTrading": False,
        }

    async def withdraw(self, request: web.Request, params: dict[str, str], key: SimKey) -> Any:
        self._move_funds(
            "withdraw",
            key,
            params.get("coin", ""),
            params.get("amount", ""),
            params.get("address", ""),
        )
        return {"id": uuid.uuid4().hex}

    async def transfer(self, request: web.Request, params: dict[str, str], key: SimKey) -> Any:
        self._move_funds(
            "transfer",
            key,
            params.get("asset", ""),
            params.get("amount", ""),
            params.get("type", ""),
        )
        return {"tranId": len(self.venue.withdrawals)}

    def _move_funds(
        self, kind: str, key: SimKey, asset: str, amount: str, destination: str
    ) -> None:
        try:
            self.venue.move_funds(kind, key, asset, amount, destination)
        except SimReject as exc:
            if exc.kind == v.NOT_PERMITTED:
                raise BinanceError(
                    -1002, "You are not authorized to execute this request.", 401
                ) from None
            if exc.kind == v.BAD_AMOUNT:
                raise BinanceError(
                    -1100, "Illegal characters found in parameter 'amount'."
                ) from None
            raise BinanceError(-4026, "User has insufficient balance") from None

    # ----- views ----------------------------------------------------------------------

    def _order_view(self, order: SimOrder, *, full: bool) -> dict[str, Any]:
        market = self.venue.markets[order.symbol]
        view: dict[str, Any] = {
            "symbol": market.exchange_id,
            "orderId": order.order_id,
            "orderListId": -1,
            "clientOrderId": order.client_order_id,
            "transactTime": order.created_ms,
            "price": _fmt(market.price(order.price)) if order.price is not None else "0.00000000",
            "origQty": _fmt(market.amount(order.amount)),
            "executedQty": _fmt(market.amount(order.filled)),
            "origQuoteOrderQty": _fmt(order.quote_budget or Decimal(0)),
            "cummulativeQuoteQty": _fmt(order.quote_filled),
            "status": order.status,
            "timeInForce": order.time_in_force,
            "type": self._type_name(order),
            "side": order.side.upper(),
            "workingTime": order.created_ms,
            "selfTradePreventionMode": "NONE",
        }
        if full:
            view["fills"] = [
                {
                    "price": _fmt(t.price),
                    "qty": _fmt(t.amount),
                    "commission": _fmt(t.fee),
                    "commissionAsset": t.fee_asset,
                    "tradeId": t.trade_id,
                }
                for t in self._trades_of(order)
            ]
        return view

    def _query_view(self, order: SimOrder) -> dict[str, Any]:
        view = self._order_view(order, full=False)
        del view["transactTime"]
        view.update(
            {
                "stopPrice": "0.00000000",
                "icebergQty": "0.00000000",
                "time": order.created_ms,
                "updateTime": order.updated_ms,
                "isWorking": True,
            }
        )
        return view

    def _trades_of(self, order: SimOrder) -> list[SimTrade]:
        wanted = set(order.trade_ids)
        return [
            t for t in self.venue.trades if t.trade_id in wanted and t.order_id == order.order_id
        ]

    def _trade_view(self, trade: SimTrade) -> dict[str, Any]:
        return {
            "symbol": self.venue.markets[trade.symbol].exchange_id,
            "id": trade.trade_id,
            "orderId": trade.order_id,
            "orderListId": -1,
            "price": _fmt(trade.price),
            "qty": _fmt(trade.amount),
            "quoteQty": _fmt(trade.quote_amount),
            "commission": _fmt(trade.fee),
            "commissionAsset": trade.fee_asset,
            "time": trade.time_ms,
            "isBuyer": trade.side == "buy",
            "isMaker": trade.is_maker,
            "isBestMatch": True,
        }

    @staticmethod
    def _type_name(order: SimOrder) -> str:
        if order.type == "market":
            return "MARKET"
        return "LIMIT"

    # ----- websocket ------------------------------------------------------------------

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=20.0, autoping=True)
        await ws.prepare(request)
        connection = WsConnection(ws, self.venue)
        connection.start()
        self.connections.add(connection)
        subscribed: set[str] = set()
        try:
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    continue
                self._on_client_message(connection, message.data, subscribed)
        finally:
            self.connections.discard(connection)
            for symbol in subscribed:
                self._book_subscribers[symbol].discard(connection)
            await connection.stop()
        return ws

    def _on_client_message(self, connection: WsConnection, text: str, subscribed: set[str]) -> None:
        try:
            message = json.loads(text)
            method = message["method"]
            request_id = message.get("id")
        except (ValueError, KeyError, TypeError):
            connection.push(
                json.dumps(
                    {"error": {"code": 3, "msg": "Invalid JSON: expected an object with 'method'"}}
                )
            )
            connection.close_soon()
            return
        if method == "LIST_SUBSCRIPTIONS":
            names = [f"{self.venue.markets[s].exchange_id.lower()}@depth@100ms" for s in subscribed]
            connection.push(json.dumps({"result": names, "id": request_id}))
            return
        if method not in ("SUBSCRIBE", "UNSUBSCRIBE"):
            connection.push(
                json.dumps(
                    {
                        "error": {"code": 2, "msg": f"Invalid request: unknown method {method}"},
                        "id": request_id,
                    }
                )
            )
            connection.close_soon()
            return
        symbols = []
        for stream in message.get("params") or []:
            base_name = (
                str(stream).rsplit("@", 1)[0]
                if str(stream).endswith(("@100ms", "@0ms"))
                else str(stream)
            )
            symbol = self._stream_names.get(base_name)
            if symbol is None:
                connection.push(
                    json.dumps(
                        {
                            "error": {
                                "code": 2,
                                "msg": f"Invalid request: unknown stream {stream}",
                            },
                            "id": request_id,
                        }
                    )
                )
                connection.close_soon()
                return
            symbols.append(symbol)
        for symbol in symbols:
            if method == "SUBSCRIBE":
                subscribed.add(symbol)
                self._book_subscribers[symbol].add(connection)
            else:
                subscribed.discard(symbol)
                self._book_subscribers[symbol].discard(connection)
        connection.push(json.dumps({"result": None, "id": request_id}))

    def _on_diff(self, diff: BookDiff) -> None:
        subscribers = self._book_subscribers[diff.symbol]
        if not subscribers:
            return
        # Built as text: prices and amounts are plain decimal strings, ids are integers.
        bids = ",".join(f'["{p}","{q}"]' for p, q in diff.bids)
        asks = ",".join(f'["{p}","{q}"]' for p, q in diff.asks)
        text = (
            f'{{"e":"depthUpdate","E":{diff.time_ms},'
            f'"s":"{self.venue.markets[diff.symbol].exchange_id}",'
            f'"U":{diff.first_id},"u":{diff.last_id},"b":[{bids}],"a":[{asks}]}}'
        )
        for connection in subscribers:
            connection.push(text)
