"""The OKX v5 wire protocol: REST ``/api/v5`` and the ``books`` / ``orders`` websockets.

Signed requests carry ``OK-ACCESS-KEY``, ``-PASSPHRASE``, ``-TIMESTAMP`` (ISO-8601 with
milliseconds, within 30 s of the venue clock) and ``-SIGN`` = base64 HMAC-SHA256 over
``timestamp + METHOD + requestPath(+query) + body``. Every answer is the envelope
``{"code": "0", "msg": "", "data": [...]}``; failures carry OKX's codes.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

from arbot.sim import venue as v
from arbot.sim._http import hmac_base64, json_response, raw_query, same
from arbot.sim.book import BUY, CANCELED, EXPIRED, FILLED, NEW, PARTIALLY_FILLED, SELL, SimOrder
from arbot.sim.venue import BookDiff, SimKey, SimReject, SimTrade, SimVenue
from arbot.sim.wsconn import WsConnection

TIMESTAMP_WINDOW_MS = 30_000
BOOK_DEPTH = 400
CHECKSUM_DEPTH = 25

STATES = {
    NEW: "live",
    PARTIALLY_FILLED: "partially_filled",
    FILLED: "filled",
    CANCELED: "canceled",
    EXPIRED: "canceled",
    v.REJECTED: "order_failed",
}

# Reject kinds → (sCode, sMsg) inside a failed order result.
REJECTS: dict[str, tuple[str, str]] = {
    v.UNKNOWN_SYMBOL: ("51001", "Instrument ID does not exist"),
    v.BAD_AMOUNT: ("51121", "Order quantity must be a multiple of the lot size."),
    v.MIN_AMOUNT: ("51020", "Your order should meet or exceed the minimum order amount."),
    v.MIN_NOTIONAL: ("51020", "Your order should meet or exceed the minimum order amount."),
    v.MAX_AMOUNT: ("51000", "Parameter sz error"),
    v.BAD_PRICE: ("51000", "Parameter px error"),
    v.INSUFFICIENT_BALANCE: ("51008", "Order failed. Insufficient balance in account."),
    v.DUPLICATE_CLIENT_ID: ("51016", "Duplicated clOrdId"),
    v.REJECTED_BY_FAULT: ("51006", "Order price is not within the price limit"),
    v.NO_LIQUIDITY: ("51000", "Parameter sz error: no liquidity"),
    v.WOULD_TAKE: ("51000", "Parameter ordType error"),
}


class OkxError(Exception):
    def __init__(
        self, code: str, msg: str, status: int = 200, data: list[Any] | None = None
    ) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.status = status
        self.data = data or []


def _ok(data: list[Any]) -> dict[str, Any]:
    return {"code": "0", "msg": "", "data": data}


def _num(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"


def _iso_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


Handler = Callable[[web.Request, dict[str, str], Any, SimKey], Awaitable[list[Any]]]


class OkxProtocol:
    """Serves one venue in the OKX v5 protocol."""

    def __init__(self, venue: SimVenue) -> None:
        self.venue = venue
        self.connections: set[WsConnection] = set()
        self._book_subscribers: dict[str, set[WsConnection]] = {s: set() for s in venue.markets}
        self._order_subscribers: dict[WsConnection, tuple[str, str | None]] = {}
        self._order_meta: dict[int, dict[str, str]] = {}
        for symbol in venue.markets:
            venue.subscribe(symbol, self._on_diff)
        venue.order_listeners.append(self._on_order)

    def urls(self, base: str) -> dict[str, str]:
        return {"rest": base, "ws": base.replace("http://", "ws://", 1) + "/ws/v5"}

    def add_routes(self, app: web.Application, prefix: str) -> None:
        api = f"{prefix}/api/v5"
        app.add_routes(
            [
                web.get(f"{api}/public/time", self._public(self.time)),
                web.get(f"{api}/public/instruments", self._public(self.instruments)),
                web.get(f"{api}/market/books", self._public(self.books)),
                web.get(f"{api}/market/books-full", self._public(self.books)),
                web.get(f"{api}/account/balance", self._signed(self.balance, "read")),
                web.get(f"{api}/account/config", self._signed(self.account_config, "read")),
                web.post(f"{api}/trade/order", self._signed(self.place_one, "trade")),
                web.post(f"{api}/trade/batch-orders", self._signed(self.place_batch, "trade")),
                web.post(f"{api}/trade/cancel-order", self._signed(self.cancel, "trade")),
                web.get(f"{api}/trade/order", self._signed(self.get_order, "read")),
                web.get(f"{api}/trade/orders-pending", self._signed(self.pending, "read")),
                web.get(f"{api}/trade/orders-history", self._signed(self.history, "read")),
                web.get(f"{api}/trade/fills", self._signed(self.fills, "read")),
                web.get(f"{api}/trade/fills-history", self._signed(self.fills, "read")),
                web.post(f"{api}/asset/withdrawal", self._signed(self.withdraw, None)),
                web.post(f"{api}/asset/transfer", self._signed(self.transfer, None)),
                web.get(f"{prefix}/ws/v5/public", self.websocket_public),
                web.get(f"{prefix}/ws/v5/private", self.websocket_private),
            ]
        )

    def fault_response(self, status: int) -> web.Response:
        if status == 429:
            return json_response({"code": "50011", "msg": "Too Many Requests", "data": []}, 429)
        if status == 503:
            return json_response(
                {
                    "code": "50001",
                    "msg": "Service temporarily unavailable, please try again later.",
                    "data": [],
                },
                503,
            )
        if status == 500:
            return json_response(
                {"code": "50026", "msg": "System error, please try again later.", "data": []}, 500
            )
        return web.Response(
            status=status, text=f"<html><body>{status}</body></html>", content_type="text/html"
        )

    # ----- request plumbing -----------------------------------------------------------

    def _public(
        self, handler: Callable[[web.Request, dict[str, str]], Awaitable[list[Any]]]
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def wrapped(request: web.Request) -> web.Response:
            params = dict(parse_qsl(raw_query(request), keep_blank_values=True))
            try:
                return json_response(_ok(await handler(request, params)))
            except OkxError as exc:
                return json_response(
                    {"code": exc.code, "msg": exc.msg, "data": exc.data}, exc.status
                )

        return wrapped

    def _signed(
        self, handler: Handler, permission: str | None
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def wrapped(request: web.Request) -> web.Response:
            try:
                body_text = (await request.read()).decode("utf-8", "replace")
                key = self._authenticate(request, body_text)
                if permission is not None and permission not in key.permissions:
                    raise OkxError("50120", "API key doesn't have permission", 200)
                params = dict(parse_qsl(raw_query(request), keep_blank_values=True))
                body: Any = None
                if body_text:
                    try:
                        body = json.loads(body_text)
                    except ValueError:
                        raise OkxError("50002", "Json data format error", 400) from None
                return json_response(_ok(await handler(request, params, body, key)))
            except OkxError as exc:
                return json_response(
                    {"code": exc.code, "msg": exc.msg, "data": exc.data}, exc.status
                )

        return wrapped

    def _authenticate(self, request: web.Request, body: str) -> SimKey:
        headers = request.headers
        api_key = headers.get("OK-ACCESS-KEY", "")
        if not api_key:
            raise OkxError("50103", "Request header OK-ACCESS-KEY cannot be empty.", 401)
        passphrase = headers.get("OK-ACCESS-PASSPHRASE", "")
        if not passphrase:
            raise OkxError("50104", "Request header OK-ACCESS-PASSPHRASE cannot be empty.", 401)
        timestamp = headers.get("OK-ACCESS-TIMESTAMP", "")
        if not timestamp:
            raise OkxError("50107", "Request header OK-ACCESS-TIMESTAMP cannot be empty.", 401)
        signature = headers.get("OK-ACCESS-SIGN", "")
        if not signature:
            raise OkxError("50106", "Request header OK-ACCESS-SIGN cannot be empty.", 401)
        key = self.venue.keys.get(api_key)
        if key is None:
            raise OkxError("50111", "Invalid OK-ACCESS-KEY.", 401)
        try:
            sent = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        except ValueError:
            raise OkxError("50112", "Invalid OK-ACCESS-TIMESTAMP.", 401) from None
        if abs(self.venue.now_ms() - sent.timestamp() * 1000) > TIMESTAMP_WINDOW_MS:
            raise OkxError("50102", "Timestamp request expired.", 401)
        if not same(passphrase, key.passphrase):
            raise OkxError("50105", "Invalid OK-ACCESS-PASSPHRASE.", 401)
        path = request.raw_path.split("/api/v5/", 1)
        request_path = "/api/v5/" + path[1] if len(path) == 2 else request.raw_path
        expected = hmac_base64(key.secret, timestamp + request.method + request_path + body)
        if not same(expected, signature):
            raise OkxError("50113", "Invalid Sign.", 401)
        return key

    def _market(self, inst_id: str) -> v.SimMarket:
        if not inst_id:
            raise OkxError("50014", "Parameter instId can not be empty.", 400)
        market = self.venue.by_exchange_id.get(inst_id)
        if market is None or market.inst_id != inst_id:
            raise OkxError("51001", "Instrument ID does not exist.")
        return market

    # ----- public ---------------------------------------------------------------------

    async def time(self, request: web.Request, params: dict[str, str]) -> list[Any]:
        return [{"ts": str(self.venue.now_ms())}]

    async def instruments(self, request: web.Request, params: dict[str, str]) -> list[Any]:
        inst_type = params.get("instType", "")
        if not inst_type:
            raise OkxError("50014", "Parameter instType can not be empty.", 400)
        if inst_type != "SPOT":
            return []
        return [
            {
                "instType": "SPOT",
                "instId": m.inst_id,
                "uly": "",
                "instFamily": "",
                "baseCcy": m.base,
                "quoteCcy": m.quote,
                "settleCcy": "",
                "ctVal": "",
                "ctMult": "",
                "ctValCcy": "",
                "optType": "",
                "stk": "",
                "listTime": "1548133413000",
                "expTime": "",
                "lever": "",
                "tickSz": _num(m.tick),
                "lotSz": _num(m.lot),
                "minSz": _num(m.min_amount),
                "ctType": "",
                "alias": "",
                "state": "live",
                "maxLmtSz": _num(m.max_amount),
                "maxMktSz": "1000000",
                "maxTwapSz": "",
                "maxIcebergSz": "",
                "maxTriggerSz": "",
                "maxStopSz": "",
                "ruleType": "normal",
            }
            for m in self.venue.markets.values()
            if params.get("instId") in (None, m.inst_id)
        ]

    async def books(self, request: web.Request, params: dict[str, str]) -> list[Any]:
        market = self._market(params.get("instId", ""))
        try:
            size = int(params.get("sz", "1"))
        except ValueError:
            raise OkxError("51000", "Parameter sz error", 400) from None
        _, bids, asks = self.venue.snapshot(market.symbol, max(1, min(size, 5000)))
        return [
            {
                "asks": [[p, q, "0", "1"] for p, q in asks],
                "bids": [[p, q, "0", "1"] for p, q in bids],
                "ts": str(self.venue.now_ms()),
            }
        ]

    # ----- account --------------------------------------------------------------------

    async def balance(
        self, request: web.Request, params: dict[str, str], body: Any, key: SimKey
    ) -> list[Any]:
        account = self.venue.accounts[key.account]
        wanted = set(params["ccy"].split(",")) if params.get("ccy") else None
        now = str(self.venue.now_ms())
        details = []
        for asset in sorted(set(account.free) | set(account.locked)):
            if wanted is not None and asset not in wanted:
                continue
            free = account.free.get(asset, Decimal(0))
            locked = account.locked.get(asset, Decimal(0))
            details.append(
                {
                    "ccy": asset,
                    "eq": _num(free + locked),
                    "cashBal": _num(free + locked),
                    "availBal": _num(free),
                    "frozenBal": _num(locked),
                    "ordFrozen": _num(locked),
                    "availEq": "",
                    "disEq": "",
                    "eqUsd": "",
                    "uTime": now,
                }
            )
        return [{"uTime": now, "totalEq": "", "adjEq": "", "details": details}]

    async def account_config(
        self, request: web.Request, params: dict[str, str], body: Any, key: SimKey
    ) -> list[Any]:
        perms = ["read_only"] if "read" in key.permissions else []
        if "withdraw" in key.permissions:
            perms.append("withdraw")
        if "trade" in key.permissions:
            perms.append("trade")
        uid = str(abs(hash(key.account)) % 10**17)
        return [
            {
                "uid": uid,
                "mainUid": uid,
                "acctLv": "1",
                "posMode": "net_mode",
                "autoLoan": False,
                "greeksType": "PA",
                "level": "Lv1",
                "levelTmp": "",
                "ctIsoMode": "automatic",
                "mgnIsoMode": "automatic",
                "perm": ",".join(perms),
                "ip": "127.0.0.1" if key.ip_restricted else "",
                "label": key.name,
                "kycLv": "2",
                "roleType": "0",
                "type": "0",
                "spotOffsetType": "",
            }
        ]

    # ----- orders ---------------------------------------------------------------------

    async def place_one(
        self, request: web.Request, params: dict[str, str], body: Any, key: SimKey
    ) -> list[Any]:
        if not isinstance(body, dict):
            raise OkxError("50002", "Json data format error", 400)
        return self._place_all([body], key, "Operation failed.")

    async def place_batch(
        self, request: web.Request, params: dict[str, str], body: Any, key: SimKey
    ) -> list[Any]:
        if not isinstance(body, list) or not body or not all(isinstance(b, dict) for b in body):
            raise OkxError("50002", "Json data format error", 400)
        if len(body) > 20:
            raise OkxError("51000", "Parameter batch orders error: at most 20 orders", 400)
        return self._place_all(body, key, "All operations failed")

    def _place_all(self, requests: list[dict[str, Any]], key: SimKey, failure: str) -> list[Any]:
        results = [self._place(r, key) for r in requests]
        failed = sum(1 for r in results if r["sCode"] != "0")
        if failed == len(results):
            raise OkxError("1", failure, 200, results)
        if failed:
            raise OkxError("2", "Bulk operation partially succeeded.", 200, results)
        return results

    def _place(self, order: dict[str, Any], key: SimKey) -> dict[str, Any]:
        client_id = str(order.get("clOrdId") or "")
        tag = str(order.get("tag") or "")
        base = {"ordId": "", "clOrdId": client_id, "tag": tag, "ts": str(self.venue.now_ms())}

        def failed(code: str, msg: str) -> dict[str, Any]:
            return base | {"sCode": code, "sMsg": msg}

        inst_id = str(order.get("instId") or "")
        market = self.venue.by_exchange_id.get(inst_id)
        if market is None or market.inst_id != inst_id:
            return failed("51001", "Instrument ID does not exist.")
        if client_id and (len(client_id) > 32 or not client_id.isalnum()):
            return failed("51000", "Parameter clOrdId error")
        if order.get("tdMode") != "cash":
            return failed("51000", "Parameter tdMode error")
        side = order.get("side")
        if side not in ("buy", "sell"):
            return failed("51000", "Parameter side error")
        ord_type = order.get("ordType")
        if ord_type not in ("limit", "market", "ioc", "fok", "post_only"):
            return failed("51000", "Parameter ordType error")
        try:
            size = Decimal(str(order.get("sz")))
            price = Decimal(str(order["px"])) if order.get("px") not in (None, "") else None
        except InvalidOperation:
            return failed("51000", "Parameter sz error")
        tgt = str(
            order.get("tgtCcy")
            or ("quote_ccy" if ord_type == "market" and side == "buy" else "base_ccy")
        )
        if ord_type != "market" and price is None:
            return failed("51000", "Parameter px error")
        amount: Decimal | None = size
        quote_amount: Decimal | None = None
        if ord_type == "market" and tgt == "quote_ccy":
            amount, quote_amount = None, size
        tif = {"ioc": "IOC", "fok": "FOK"}.get(str(ord_type), "GTC")
        try:
            placed = self.venue.place_order(
                key.account,
                market.symbol,
                str(side),
                "market" if ord_type == "market" else "limit",
                amount,
                None if ord_type == "market" else price,
                tif,
                client_id,
                quote_amount,
                post_only=ord_type == "post_only",
            )
        except SimReject as exc:
            return failed(*REJECTS[exc.kind])
        self._order_meta[placed.order_id] = {
            "ordType": str(ord_type),
            "tgtCcy": tgt if ord_type == "market" else "",
            "tag": tag,
            "sz": _num(size),
        }
        return base | {"ordId": str(placed.order_id), "sCode": "0", "sMsg": "Order placed"}

    def _find(self, params: dict[str, Any], key: SimKey) -> tuple[v.SimMarket, SimOrder]:
        market = self._market(str(params.get("instId") or ""))
        order_id = params.get("ordId")
        client_id = str(params.get("clOrdId") or "")
        if not order_id and not client_id:
            raise OkxError("51000", "Parameter ordId or clOrdId error", 400)
        try:
            return market, self.venue.find_order(
                key.account, market.symbol, int(order_id) if order_id else None, client_id
            )
        except (SimReject, ValueError):
            raise OkxError("51603", "Order does not exist") from None

    async def cancel(
        self, request: web.Request, params: dict[str, str], body: Any, key: SimKey
    ) -> list[Any]:
        if not isinstance(body, dict):
            raise OkxError("50002", "Json data format error", 400)
        client_id = str(body.get("clOrdId") or "")
        try:
            market, order = self._find(body, key)
            self.venue.cancel_order(key.account, market.symbol, order)
        except (OkxError, SimReject) as exc:
            if isinstance(exc, OkxError) and exc.code not in ("51603",):
                raise
            result = {
                "ordId": str(body.get("ordId") or ""),
                "clOrdId": client_id,
                "ts": str(self.venue.now_ms()),
                "sCode": "51400",
                "sMsg": "Cancellation failed as the order has been filled, canceled or does not exist.",
            }
            raise OkxError("1", "Operation failed.", 200, [result]) from None
        return [
            {
                "ordId": str(order.order_id),
                "clOrdId": order.client_order_id,
                "ts": str(self.venue.now_ms()),
                "sCode": "0",
                "sMsg": "",
            }
        ]

    async def get_order(
        self, request: web.Request, params: dict[str, str], body: Any, key: SimKey
    ) -> list[Any]:
        _, order = self._find(params, key)
        return [self._order_view(order)]

    async def pending(
        self, request: web.Request, params: dict[str, str], body: Any, key: SimKey
    ) -> list[Any]:
        symbol = self._market(params["instId"]).symbol if params.get("instId") else None
        orders = sorted(self.venue.open_orders(key.account, symbol), key=lambda o: -o.order_id)
        return [self._order_view(o) for o in orders[: int(params.get("limit", "100"))]]

    async def history(
        self, request: web.Request, params: dict[str, str], body: Any, key: SimKey
    ) -> list[Any]:
        symbol = self._market(params["instId"]).symbol if params.get("instId") else None
        state = params.get("state")
        orders = [
            o
            for o in self.venue.orders.values()
            if o.account == key.account
            and not o.is_open
            and (symbol is None or o.symbol == symbol)
            and (state is None or STATES[o.status] == state)
        ]
        orders.sort(key=lambda o: -o.order_id)
        return [self._order_view(o) for o in orders[: int(params.get("limit", "100"))]]

    async def fills(
        self, request: web.Request, params: dict[str, str], body: Any, key: SimKey
    ) -> list[Any]:
        symbol = self._market(params["instId"]).symbol if params.get("instId") else None
        trades = self.venue.account_trades(key.account, symbol)
        if params.get("ordId"):
            trades = [t for t in trades if str(t.order_id) == params["ordId"]]
        if params.get("begin"):
            trades = [t for t in trades if t.time_ms >= int(params["begin"])]
        if params.get("end"):
            trades = [t for t in trades if t.time_ms <= int(params["end"])]
        trades = sorted(trades, key=lambda t: -t.trade_id)[: int(params.get("limit", "100"))]
        return [self._fill_view(t) for t in trades]

    async def withdraw(
        self, request: web.Request, params: dict[str, str], body: Any, key: SimKey
    ) -> list[Any]:
        body = body if isinstance(body, dict) else {}
        self._move_funds("withdraw", key, body, str(body.get("toAddr", "")))
        return [
            {
                "wdId": str(len(self.venue.withdrawals)),
                "ccy": body.get("ccy", ""),
                "amt": body.get("amt", ""),
                "chain": body.get("chain", ""),
                "clientId": "",
            }
        ]

    async def transfer(
        self, request: web.Request, params: dict[str, str], body: Any, key: SimKey
    ) -> list[Any]:
        body = body if isinstance(body, dict) else {}
        self._move_funds("transfer", key, body, f"{body.get('from', '')}->{body.get('to', '')}")
        return [
            {
                "transId": str(len(self.venue.withdrawals)),
                "ccy": body.get("ccy", ""),
                "amt": body.get("amt", ""),
                "from": body.get("from", ""),
                "to": body.get("to", ""),
                "clientId": "",
            }
        ]

    def _move_funds(self, kind: str, key: SimKey, body: dict[str, Any], destination: str) -> None:
        try:
            self.venue.move_funds(
                kind, key, str(body.get("ccy", "")), str(body.get("amt", "")), destination
            )
        except SimReject as exc:
            if exc.kind == v.NOT_PERMITTED:
                raise OkxError("50120", "API key doesn't have permission") from None
            if exc.kind == v.BAD_AMOUNT:
                raise OkxError("51000", "Parameter amt error", 400) from None
            raise OkxError("58350", "Insufficient balance") from None

    # ----- views ----------------------------------------------------------------------

    def _order_view(self, order: SimOrder, trade: SimTrade | None = None) -> dict[str, Any]:
        market = self.venue.markets[order.symbol]
        meta = self._order_meta.get(order.order_id, {})
        trades = [
            t
            for t in self.venue.trades
            if t.order_id == order.order_id and t.account == order.account
        ]
        last = trade or (trades[-1] if trades else None)
        fee = sum((t.fee for t in trades), Decimal(0))
        filled = market.amount(order.filled)
        return {
            "instType": "SPOT",
            "instId": market.inst_id,
            "tgtCcy": meta.get("tgtCcy", ""),
            "ccy": "",
            "ordId": str(order.order_id),
            "clOrdId": order.client_order_id,
            "tag": meta.get("tag", ""),
            "px": _num(market.price(order.price)) if order.price is not None else "",
            "pxUsd": "",
            "pxVol": "",
            "pxType": "",
            "sz": meta.get("sz", _num(market.amount(order.amount))),
            "pnl": "0",
            "ordType": meta.get("ordType", "limit" if order.type == "limit" else "market"),
            "side": order.side,
            "posSide": "net",
            "tdMode": "cash",
            "accFillSz": _num(filled),
            "fillPx": _num(last.price) if last else "",
            "tradeId": str(last.trade_id) if last else "",
            "fillSz": _num(last.amount) if last else "0",
            "fillTime": str(last.time_ms) if last else "",
            "avgPx": _num(order.quote_filled / filled) if filled else "",
            "state": STATES[order.status],
            "lever": "",
            "feeCcy": (
                trades[0].fee_asset
                if trades
                else (market.base if order.side == "buy" else market.quote)
            ),
            "fee": _num(-fee),
            "rebateCcy": market.quote,
            "rebate": "0",
            "source": "",
            "category": "normal",
            "reduceOnly": "false",
            "cancelSource": "",
            "uTime": str(order.updated_ms),
            "cTime": str(order.created_ms),
        }

    def _fill_view(self, trade: SimTrade) -> dict[str, Any]:
        market = self.venue.markets[trade.symbol]
        return {
            "instType": "SPOT",
            "instId": market.inst_id,
            "tradeId": str(trade.trade_id),
            "ordId": str(trade.order_id),
            "clOrdId": trade.client_order_id,
            "billId": str(trade.trade_id),
            "tag": self._order_meta.get(trade.order_id, {}).get("tag", ""),
            "fillPx": _num(trade.price),
            "fillSz": _num(trade.amount),
            "side": trade.side,
            "posSide": "net",
            "execType": "M" if trade.is_maker else "T",
            "feeCcy": trade.fee_asset,
            "fee": _num(-trade.fee),
            "ts": str(trade.time_ms),
            "fillTime": str(trade.time_ms),
        }

    # ----- websockets -----------------------------------------------------------------

    async def websocket_public(self, request: web.Request) -> web.WebSocketResponse:
        return await self._websocket(request, private=False)

    async def websocket_private(self, request: web.Request) -> web.WebSocketResponse:
        return await self._websocket(request, private=True)

    async def _websocket(self, request: web.Request, *, private: bool) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        connection = WsConnection(ws, self.venue)
        connection.start()
        self.connections.add(connection)
        state: dict[str, Any] = {
            "conn_id": format(id(connection) & 0xFFFFFFFF, "08x"),
            "key": None,
            "books": set(),
        }
        try:
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    continue
                if message.data == "ping":
                    connection.push("pong")
                    continue
                self._on_client_message(connection, message.data, state, private)
        finally:
            self.connections.discard(connection)
            for symbol in state["books"]:
                self._book_subscribers[symbol].discard(connection)
            self._order_subscribers.pop(connection, None)
            await connection.stop()
        return ws

    def _error(self, connection: WsConnection, state: dict[str, Any], code: str, msg: str) -> None:
        connection.push(
            json.dumps({"event": "error", "code": code, "msg": msg, "connId": state["conn_id"]})
        )

    def _on_client_message(
        self, connection: WsConnection, text: str, state: dict[str, Any], private: bool
    ) -> None:
        try:
            message = json.loads(text)
            op = message["op"]
            args = message.get("args") or []
        except (ValueError, KeyError, TypeError):
            self._error(connection, state, "60012", f"Invalid request: {text[:100]}")
            return
        if op == "login":
            self._login(connection, state, args)
            return
        if op not in ("subscribe", "unsubscribe"):
            self._error(connection, state, "60012", f"Invalid request: {text[:100]}")
            return
        for arg in args:
            channel = arg.get("channel") if isinstance(arg, dict) else None
            if channel == "books" and not private:
                self._book_subscription(connection, state, op, arg)
            elif channel == "orders" and private:
                if state["key"] is None:
                    self._error(connection, state, "60011", "Please log in")
                    continue
                inst_id = arg.get("instId")
                if op == "subscribe":
                    self._order_subscribers[connection] = (state["key"].account, inst_id)
                else:
                    self._order_subscribers.pop(connection, None)
                connection.push(json.dumps({"event": op, "arg": arg, "connId": state["conn_id"]}))
            else:
                self._error(
                    connection,
                    state,
                    "60018",
                    f"Wrong URL or channel:{channel},instId:{arg.get('instId') if isinstance(arg, dict) else ''} doesn't exist.",
                )

    def _book_subscription(
        self, connection: WsConnection, state: dict[str, Any], op: str, arg: dict[str, Any]
    ) -> None:
        inst_id = str(arg.get("instId") or "")
        market = self.venue.by_exchange_id.get(inst_id)
        if market is None or market.inst_id != inst_id:
            self._error(
                connection,
                state,
                "60018",
                f"Wrong URL or channel:books,instId:{inst_id} doesn't exist.",
            )
            return
        ack = json.dumps(
            {
                "event": op,
                "arg": {"channel": "books", "instId": inst_id},
                "connId": state["conn_id"],
            }
        )
        if op == "unsubscribe":
            state["books"].discard(market.symbol)
            self._book_subscribers[market.symbol].discard(connection)
            connection.push(ack)
            return
        state["books"].add(market.symbol)
        self._book_subscribers[market.symbol].add(connection)
        connection.push(ack)
        seq, bids, asks = self.venue.snapshot(market.symbol, BOOK_DEPTH)
        connection.push(
            json.dumps(
                {
                    "arg": {"channel": "books", "instId": inst_id},
                    "action": "snapshot",
                    "data": [
                        {
                            "asks": [[p, q, "0", "1"] for p, q in asks],
                            "bids": [[p, q, "0", "1"] for p, q in bids],
                            "ts": str(self.venue.now_ms()),
                            "checksum": _checksum(bids, asks),
                            "prevSeqId": -1,
                            "seqId": seq,
                        }
                    ],
                },
                separators=(",", ":"),
            )
        )

    def _login(self, connection: WsConnection, state: dict[str, Any], args: list[Any]) -> None:
        arg = args[0] if args and isinstance(args[0], dict) else {}
        key = self.venue.keys.get(str(arg.get("apiKey", "")))
        timestamp = str(arg.get("timestamp", ""))
        ok = (
            key is not None
            and same(str(arg.get("passphrase", "")), key.passphrase)
            and timestamp.isdigit()
            and abs(self.venue.now_ms() - int(timestamp) * 1000) <= TIMESTAMP_WINDOW_MS
            and same(
                hmac_base64(key.secret, timestamp + "GET/users/self/verify"),
                str(arg.get("sign", "")),
            )
        )
        if not ok or key is None:
            self._error(connection, state, "60009", "Login failed.")
            return
        state["key"] = key
        connection.push(
            json.dumps({"event": "login", "code": "0", "msg": "", "connId": state["conn_id"]})
        )

    def _on_diff(self, diff: BookDiff) -> None:
        subscribers = self._book_subscribers[diff.symbol]
        if not subscribers:
            return
        market = self.venue.markets[diff.symbol]
        book = self.venue.books[diff.symbol]
        top_bids = [
            (market.price_text(p), market.amount_text(q))
            for p, q in book.depth(BUY, CHECKSUM_DEPTH)
        ]
        top_asks = [
            (market.price_text(p), market.amount_text(q))
            for p, q in book.depth(SELL, CHECKSUM_DEPTH)
        ]
        # Built as text: prices and amounts are plain decimal strings, ids are integers.
        ask_text = ",".join(f'["{p}","{q}","0","{0 if q == "0" else 1}"]' for p, q in diff.asks)
        bid_text = ",".join(f'["{p}","{q}","0","{0 if q == "0" else 1}"]' for p, q in diff.bids)
        text = (
            f'{{"arg":{{"channel":"books","instId":"{market.inst_id}"}},"action":"update",'
            f'"data":[{{"asks":[{ask_text}],"bids":[{bid_text}],"ts":"{diff.time_ms}",'
            f'"checksum":{_checksum(top_bids, top_asks)},"prevSeqId":{diff.prev_id},'
            f'"seqId":{diff.last_id}}}]}}'
        )
        for connection in subscribers:
            connection.push(text)

    def _on_order(self, order: SimOrder, trade: SimTrade | None) -> None:
        if not self._order_subscribers:
            return
        market = self.venue.markets[order.symbol]
        view = self._order_view(order, trade)
        if trade is not None:
            view.update(
                {
                    "fillFee": _num(-trade.fee),
                    "fillFeeCcy": trade.fee_asset,
                    "execType": "M" if trade.is_maker else "T",
                }
            )
        else:
            view.update(
                {
                    "tradeId": "",
                    "fillSz": "0",
                    "fillPx": "",
                    "fillFee": "0",
                    "fillFeeCcy": "",
                    "execType": "",
                }
            )
        text = json.dumps({"arg": {"channel": "orders", "instType": "SPOT"}, "data": [view]})
        for connection, (account, inst_id) in self._order_subscribers.items():
            if account == order.account and inst_id in (None, market.inst_id):
                connection.push(text)


def _checksum(bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> int:
    """OKX's book checksum: CRC32 over the top 25 levels, interleaved bid:ask, signed."""
    parts: list[str] = []
    for i in range(max(len(bids), len(asks))):
        if i < len(bids):
            parts.extend(bids[i])
        if i < len(asks):
            parts.extend(asks[i])
    value = zlib.crc32(":".join(parts).encode())
    return value - (1 << 32) if value >= 1 << 31 else value
