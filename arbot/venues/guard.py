"""The third layer of the no-withdraw rule: a ccxt object that cannot move funds.

:func:`guarded_class` derives a subclass of a ccxt exchange class in which every method
whose name says it moves funds (``withdraw``, ``transfer``, their implicit REST forms such
as ``sapiPostCapitalWithdrawApply`` or ``privatePostAssetWithdrawal``, and websocket
variants) raises :class:`FundsMovementBlocked` before any request is built, and in which
the generic ``request`` path refuses any endpoint whose path names a withdrawal, a
transfer or a sub-account — so even a call through ``exchange.request(...)`` or an
implicit method this list does not know is stopped. It fails closed: a few read-only
history calls (``fetch_withdrawals``) are blocked too, which a trading bot never needs.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any, NoReturn

from arbot.errors import ArbotError

FUNDS_MOVEMENT = re.compile(r"withdraw|transfer|sub-?account|payout|internal-?send", re.IGNORECASE)


class FundsMovementBlocked(ArbotError):
    """An attempt to withdraw or transfer funds was stopped inside arbot."""


def _blocked(name: str) -> Any:
    def refuse(self: Any, *args: Any, **kwargs: Any) -> NoReturn:
        raise FundsMovementBlocked(
            f"{getattr(self, 'id', 'exchange')}.{name} refused: arbot never withdraws or "
            "transfers funds"
        )

    refuse.__name__ = name
    return refuse


def _blocked_names(cls: type) -> list[str]:
    names = []
    for name in dir(cls):
        if name.startswith(("parse", "_")) or not FUNDS_MOVEMENT.search(name):
            continue
        if callable(getattr(cls, name, None)):
            names.append(name)
    return names


@cache
def guarded_class(cls: type) -> type:
    """``cls`` with every funds-moving call refused (cached per exchange class)."""
    attributes: dict[str, Any] = {name: _blocked(name) for name in _blocked_names(cls)}
    original_request = cls.request  # type: ignore[attr-defined]

    def request(self: Any, path: Any, *args: Any, **kwargs: Any) -> Any:
        text = path if isinstance(path, str) else "/".join(map(str, path))
        if FUNDS_MOVEMENT.search(text):
            raise FundsMovementBlocked(
                f"{getattr(self, 'id', 'exchange')} request to {text!r} refused: arbot never "
                "withdraws or transfers funds"
            )
        return original_request(self, path, *args, **kwargs)

    attributes["request"] = request
    attributes["__doc__"] = f"{cls.__name__} that refuses to withdraw or transfer funds."
    return type(f"Guarded{cls.__name__}", (cls,), attributes)


def is_guarded(exchange: Any) -> bool:
    return (
        type(exchange).__name__.startswith("Guarded") and type(exchange).__bases__[0] is not object
    )
