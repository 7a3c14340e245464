"""The strategy plugin API: what a plugin subclasses, what it is given, how it is found.

A plugin is a :class:`Strategy` subclass with a ``name``, a pydantic ``Params`` model
and a synchronous, pure :meth:`Strategy.on_book`. The engine hands it each
:class:`~arbot.feeds.book_feed.BookUpdate` with a read-only :class:`StrategyContext`
and sends the :class:`~arbot.model.Opportunity` values it returns to risk.
"""

from __future__ import annotations

from arbot.feeds.book_feed import BookUpdate
from arbot.strategy.base import BookKey, Crossing, Strategy, StrategyParams
from arbot.strategy.context import MarketState, StrategyContext

__all__ = [
    "BookKey",
    "BookUpdate",
    "Crossing",
    "MarketState",
    "Strategy",
    "StrategyContext",
    "StrategyParams",
]
