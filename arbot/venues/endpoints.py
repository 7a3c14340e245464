"""Pointing a ccxt exchange at a compatible server (``endpoint = "http://host:port/venue"``).

One config line must move *every* URL a venue uses, or none: after rewriting,
:func:`verify_urls` walks ``exchange.urls['api']`` and refuses to start if any URL still
points elsewhere (a test against the simulator must never reach a real exchange).
URLs a protocol does not route are sent to ``<endpoint>/_unrouted/<name>``, so a call
arbot did not plan for fails loudly on the local server instead of leaving it.
"""

from __future__ import annotations

from typing import Any

from arbot.errors import ArbotError

SUPPORTED = ("binance", "okx")


class EndpointError(ArbotError):
    """A venue's endpoint cannot be applied, or some URL would still leave it."""


def _ws_base(base: str) -> str:
    return (
        ("wss://" + base[len("https://") :])
        if base.startswith("https://")
        else "ws://" + base[len("http://") :]
    )


def _reroute_all(node: Any, base: str, path: str) -> Any:
    if isinstance(node, dict):
        return {key: _reroute_all(value, base, f"{path}/{key}") for key, value in node.items()}
    if isinstance(node, str):
        return f"{base}/_unrouted{path}"
    return node


def point_at(exchange: Any, exchange_id: str, endpoint: str, venue: str) -> None:
    """Rewrite every REST and websocket URL of ``exchange`` to ``endpoint``."""
    base = endpoint.rstrip("/")
    ws = _ws_base(base)
    if exchange_id == "binance":
        api = _reroute_all(exchange.urls["api"], base, "")
        api["public"] = f"{base}/api/v3"
        api["private"] = f"{base}/api/v3"
        api["sapi"] = f"{base}/sapi/v1"
        api.setdefault("ws", {})
        if isinstance(api["ws"], dict):
            api["ws"]["spot"] = f"{ws}/stream/ws"
        exchange.urls["api"] = api
        exchange.options["fetchMarkets"] = {"types": ["spot"]}
        exchange.options["fetchCurrencies"] = False
        exchange.options["fetchMargins"] = False
    elif exchange_id == "okx":
        exchange.urls["api"] = {"rest": base, "ws": f"{ws}/ws/v5"}
        exchange.options["fetchMarkets"] = {"types": ["spot"]}
        exchange.has["fetchCurrencies"] = False
    else:
        raise EndpointError(
            f"venue {venue}: endpoint is supported for exchanges {', '.join(SUPPORTED)} "
            f"(the simulator's protocols), not {exchange_id}; remove the endpoint line"
        )
    verify_urls(exchange, endpoint, venue)


def verify_urls(exchange: Any, endpoint: str, venue: str) -> None:
    """Refuse if any API URL of ``exchange`` does not start with ``endpoint``."""
    base = endpoint.rstrip("/")
    allowed = (base + "/", _ws_base(base) + "/")

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{path}.{key}")
        elif (
            isinstance(node, str)
            and node not in (base, _ws_base(base))
            and not node.startswith(allowed)
        ):
            raise EndpointError(
                f"venue {venue}: urls{path} still points at {node} although endpoint is "
                f"{endpoint}; refusing to start"
            )

    walk(exchange.urls.get("api"), "['api']")
