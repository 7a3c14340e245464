"""``CcxtVenue``: a venue backed by a (guarded) ccxt exchange.

ccxt's dicts are translated into arbot's models here and nowhere else. Orders pass the
permission guard first; the ccxt object cannot withdraw or transfer (see ``guard.py``).

Clock skew: every signed call passes :meth:`sync_time` to the REST gate, so when the
venue refuses a request's timestamp (ccxt ``InvalidNonce``) the venue's clock offset is
measured (``exchange.load_time_difference()``, after which ccxt signs with the corrected
time; ``adjustForTimeDifference`` is switched on so later market reloads re-measure it)
and the request is sent once more. A refused timestamp means the request was not
executed, so repeating even an order placement cannot duplicate it.
"""

from __future__ import annotations

import time
from dataclasses import replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from arbot.errors import ConfigError
from arbot.keys.guard import KeyNotTradeOnly, PermissionGuard
from arbot.model import (
    Balance,
    Fill,
    Market,
    Order,
    OrderBook,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    to_decimal,
)
from arbot.venues.base import Venue
from arbot.venues.errors import BookGap, RateLimited, VenueUnavailable
from arbot.venues.factory import build_exchange
from arbot.venues.rest import RestGate

if TYPE_CHECKING:
    from arbot.config import VenueConfig

_STATUS = {
    "open": OrderStatus.OPEN,
    "closed": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELED,
    "expired": OrderStatus.EXPIRED,
    "rejected": OrderStatus.REJECTED,
}


def _dec(value: Any) -> Decimal:
    return Decimal(0) if value is None else to_decimal(value)


class CcxtVenue(Venue):
    """One account on one exchange through ccxt (REST here; streams live in the feeds)."""

    def __init__(
        self,
        name: str,
        config: VenueConfig,
        guard: PermissionGuard | None,
        *,
        exchange: Any | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self.guard = guard
        self.exchange = exchange or build_exchange(name, config, config.credentials)
        self.markets: dict[str, Market] = {}
        default_rate = 1000.0 / float(getattr(self.exchange, "rateLimit", 100) or 100)
        self.rest = RestGate(name, config.rate_limit or default_rate)
        streams = bool((getattr(self.exchange, "has", None) or {}).get("watchOrderBook"))
        if config.book_source == "stream" and not streams:
            raise ConfigError(
                f"venues.{name}.book_source: ccxt has no websocket order book for "
                f'{config.exchange}; use book_source = "poll" (or "auto")'
            )
        if config.book_source == "poll" or (config.book_source == "auto" and not streams):
            self.poll_interval_s = config.poll_interval_ms / 1000.0
        if guard is not None and config.credentials is not None:
            api_key = config.credentials.api_key.get_secret_value()

            async def prove() -> Any:
                from arbot.keys.permissions import probe_permissions

                return await probe_permissions(self.exchange, config.exchange, api_key)

            guard.register(name, prove, allow_unverified=config.allow_unverified_key)

    def supports_time_in_force(self, time_in_force: TimeInForce) -> bool:
        """Whether the exchange accepts ``time_in_force`` on spot limit orders (ccxt features)."""
        features = getattr(self.exchange, "features", None) or {}
        spot = features.get("spot") or {}
        create = spot.get("createOrder") or {}
        return bool((create.get("timeInForce") or {}).get(time_in_force.value, False))

    async def sync_time(self) -> int:
        """Measure the venue clock's offset; ccxt signs with it from now on. Returns it (ms)."""
        from loguru import logger

        offset = await self.rest.call(self.exchange.load_time_difference)
        self.exchange.options["adjustForTimeDifference"] = True
        logger.warning(
            "{}: the venue refused a request's timestamp; clock re-synchronised: the venue's "
            "clock is {:+d} ms from ours",
            self.name,
            -int(offset),
        )
        return int(offset)

    async def load_markets(self) -> dict[str, Market]:
        markets = await self.rest.call(self.exchange.load_markets)
        out = {}
        for symbol in self.config.symbols:
            info = markets[symbol]
            limits = info.get("limits") or {}
            out[symbol] = Market(
                venue=self.name,
                symbol=symbol,
                base=info["base"],
                quote=info["quote"],
                price_tick=_dec(info["precision"]["price"]),
                amount_step=_dec(info["precision"]["amount"]),
                min_amount=_dec((limits.get("amount") or {}).get("min")),
                min_notional=_dec((limits.get("cost") or {}).get("min")),
                max_amount=None
                if (limits.get("amount") or {}).get("max") is None
                else _dec(limits["amount"]["max"]),
                taker_fee=self.config.taker_fee
                if self.config.taker_fee is not None
                else _dec(info.get("taker")),
                maker_fee=self.config.maker_fee
                if self.config.maker_fee is not None
                else _dec(info.get("maker")),
            )
        self.markets = out
        return out

    async def fetch_balances(self) -> dict[str, Balance]:
        raw = await self.rest.call(self.exchange.fetch_balance, resync=self.sync_time)
        return {
            asset: Balance(
                self.name, asset, _dec(raw[asset].get("free")), _dec(raw[asset].get("used"))
            )
            for asset in raw.get("total", {})
        }

    async def fetch_order_book(self, symbol: str, limit: int = 20) -> OrderBook:
        raw = await self.rest.call(self.exchange.fetch_order_book, symbol, limit)
        return OrderBook.checked(
            self.name,
            symbol,
            [(float(p), float(q)) for p, q, *_ in raw["bids"]],
            [(float(p), float(q)) for p, q, *_ in raw["asks"]],
            raw.get("timestamp"),
            time.time_ns(),
            raw.get("nonce"),
        )

    async def watch_order_book(self, symbol: str, depth: int) -> OrderBook:
        import ccxt

        try:
            raw = await self.exchange.watch_order_book(symbol)
        except ccxt.InvalidNonce as exc:  # ChecksumError is one too
            raise BookGap(
                self.name, f"{symbol} book out of sequence ({type(exc).__name__})"
            ) from None
        except (ccxt.DDoSProtection, ccxt.RateLimitExceeded) as exc:
            raise RateLimited(
                self.name, f"{symbol} stream rate limited: {type(exc).__name__}"
            ) from None
        except ccxt.NetworkError as exc:
            raise VenueUnavailable(
                self.name, f"{symbol} stream failed: {type(exc).__name__}"
            ) from None
        bids = raw["bids"][:depth]
        asks = raw["asks"][:depth]
        # ccxt's levels are [price, amount] lists; tuple() of each is twice as fast as
        # unpacking, but a venue with [price, amount, count] levels needs the slow path.
        if (bids and len(bids[0]) != 2) or (asks and len(asks[0]) != 2):
            bid_levels = [(level[0], level[1]) for level in bids]
            ask_levels = [(level[0], level[1]) for level in asks]
        else:
            bid_levels = list(map(tuple, bids))
            ask_levels = list(map(tuple, asks))
        return OrderBook(
            self.name,
            symbol,
            bid_levels,
            ask_levels,
            raw.get("timestamp"),
            time.time_ns(),
            raw.get("nonce"),
        )

    async def reset_streams(self) -> None:
        for client in list(getattr(self.exchange, "clients", {}).values()):
            await client.close()

    async def create_order(self, order: Order) -> Order:
        if self.guard is None:
            raise KeyNotTradeOnly(f"{self.name}: no permission guard; refusing to send orders")
        await self.guard.require(self.name)
        params: dict[str, Any] = {"clientOrderId": order.client_order_id}
        if order.type is OrderType.LIMIT:
            params["timeInForce"] = order.time_in_force.value
        raw = await self.rest.call(
            self.exchange.create_order,
            order.symbol,
            order.type.value,
            order.side.value,
            float(order.amount),
            None if order.price is None else float(order.price),
            params,
            idempotent=False,
            resync=self.sync_time,
        )
        if raw.get("status") is None or raw.get("filled") is None:
            # Some venues (OKX) answer a new order with its id only: ask for the rest.
            return await self.fetch_order(replace(order, exchange_order_id=str(raw["id"])))
        return self._order(raw, order)

    async def cancel_order(self, order: Order) -> Order:
        await self.rest.call(
            self.exchange.cancel_order,
            order.exchange_order_id,
            order.symbol,
            self._id_params(order),
            resync=self.sync_time,
        )
        return await self.fetch_order(order)

    async def fetch_order(self, order: Order) -> Order:
        raw = await self.rest.call(
            self.exchange.fetch_order,
            order.exchange_order_id,
            order.symbol,
            self._id_params(order),
            resync=self.sync_time,
        )
        return self._order(raw, order)

    async def fetch_order_fills(self, order: Order) -> list[Fill]:
        exchange_id = order.exchange_order_id
        if exchange_id is None:
            exchange_id = (await self.fetch_order(order)).exchange_order_id
        raw = await self.rest.call(
            self.exchange.fetch_order_trades, exchange_id, order.symbol, resync=self.sync_time
        )
        fills = []
        for trade in raw:
            fee = trade.get("fee") or {}
            fills.append(
                Fill(
                    venue=self.name,
                    symbol=str(trade.get("symbol") or order.symbol),
                    side=Side(trade["side"]) if trade.get("side") else order.side,
                    amount=_dec(trade.get("amount")),
                    price=_dec(trade.get("price")),
                    fee=_dec(fee.get("cost")),
                    fee_currency=str(fee.get("currency") or ""),
                    timestamp_ms=int(trade.get("timestamp") or 0),
                    client_order_id=order.client_order_id,
                    trade_id=str(trade.get("id")),
                    is_maker=trade.get("takerOrMaker") == "maker",
                )
            )
        return fills

    async def fetch_open_orders(self, symbol: str | None = None) -> list[Order]:
        symbols = [symbol] if symbol else list(self.config.symbols)
        out = []
        for name in symbols:
            for raw in await self.rest.call(
                self.exchange.fetch_open_orders, name, resync=self.sync_time
            ):
                out.append(self._order(raw, None))
        return out

    async def close(self) -> None:
        await self.exchange.close()

    @staticmethod
    def _id_params(order: Order) -> dict[str, Any]:
        return {} if order.exchange_order_id else {"clientOrderId": order.client_order_id}

    def _order(self, raw: dict[str, Any], sent: Order | None) -> Order:
        kind = raw.get("type")
        order_type = (
            OrderType(kind)
            if kind in ("limit", "market")
            else (sent.type if sent else OrderType.LIMIT)
        )
        tif = raw.get("timeInForce")
        amount = raw.get("amount")
        return Order(
            client_order_id=sent.client_order_id if sent else str(raw.get("clientOrderId") or ""),
            venue=self.name,
            symbol=str(raw.get("symbol") or (sent.symbol if sent else "")),
            side=Side(raw["side"]) if raw.get("side") else (sent.side if sent else Side.BUY),
            type=order_type,
            amount=_dec(amount) if amount is not None else (sent.amount if sent else Decimal(0)),
            price=None if raw.get("price") is None else _dec(raw["price"]),
            time_in_force=TimeInForce(tif)
            if tif in ("GTC", "IOC", "FOK")
            else (sent.time_in_force if sent else TimeInForce.GTC),
            status=_STATUS.get(str(raw.get("status")), OrderStatus.UNKNOWN),
            filled=_dec(raw.get("filled")),
            average_price=None if raw.get("average") is None else _dec(raw["average"]),
            exchange_order_id=str(raw["id"]) if raw.get("id") is not None else None,
            created_ms=int(raw.get("timestamp") or 0),
            updated_ms=int(raw.get("lastUpdateTimestamp") or raw.get("timestamp") or 0),
        )
