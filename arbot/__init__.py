"""arbot: multi-exchange crypto arbitrage with trade-only keys.

Importing ``arbot`` costs nothing: the names below load on first use (PEP 562), and
nothing here ever imports ccxt, pydantic-settings, SQLAlchemy or loguru, so the
command line starts fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "ArbotError": "arbot.errors",
    "Balance": "arbot.model",
    "BookStamp": "arbot.model",
    "ConfigError": "arbot.errors",
    "Fill": "arbot.model",
    "Leg": "arbot.model",
    "Market": "arbot.model",
    "Opportunity": "arbot.model",
    "Order": "arbot.model",
    "OrderBook": "arbot.model",
    "OrderStatus": "arbot.model",
    "OrderType": "arbot.model",
    "Side": "arbot.model",
    "StoreError": "arbot.errors",
    "TimeInForce": "arbot.model",
    "Walk": "arbot.model",
}

__all__ = [
    "ArbotError",
    "Balance",
    "BookStamp",
    "ConfigError",
    "Fill",
    "Leg",
    "Market",
    "Opportunity",
    "Order",
    "OrderBook",
    "OrderStatus",
    "OrderType",
    "Side",
    "StoreError",
    "TimeInForce",
    "Walk",
    "__version__",
]

if TYPE_CHECKING:
    from arbot.errors import ArbotError, ConfigError, StoreError
    from arbot.model import (
        Balance,
        BookStamp,
        Fill,
        Leg,
        Market,
        Opportunity,
        Order,
        OrderBook,
        OrderStatus,
        OrderType,
        Side,
        TimeInForce,
        Walk,
    )


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'arbot' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
