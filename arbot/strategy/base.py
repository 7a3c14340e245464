"""The :class:`Strategy` base class a plugin subclasses.

Modelled on Freqtrade's strategy interface (a few named hooks a trader learns in an
afternoon) and NautilusTrader's single domain model (the same objects live and in
backtest). A strategy is *synchronous and pure*: it reads the context, returns
opportunities, and never reaches a venue, ccxt or the network. That is what makes it
fast, testable with plain lists, and identical in the daemon and the backtest.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from arbot.errors import ConfigError
from arbot.feeds.book_feed import BookUpdate
from arbot.model import Fill, Market, Opportunity
from arbot.strategy.context import StrategyContext

BookKey = tuple[str, str]
"""``(venue, symbol)``: one book."""


@dataclass(frozen=True, slots=True)
class Crossing:
    """A top-of-book test: ``best bid(sell) * sell_factor > best ask(buy) * buy_factor``.

    One element of :meth:`Strategy.screen`. A book with no bid (``sell``) or no ask
    (``buy``), or not seen yet, fails the test.
    """

    sell: BookKey
    sell_factor: float
    buy: BookKey
    buy_factor: float


class StrategyParams(BaseModel):
    """Base of every plugin's ``Params``: strict (unknown keys are errors) and frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Strategy(ABC):
    """Subclass this, set ``name``, define ``Params``, implement :meth:`on_book`.

    ``params`` is the validated ``[strategy.params]`` table. Hooks other than
    :meth:`on_book` are optional. Keep per-update work small: :meth:`on_book` runs on
    the engine's hot path for every book update of the books the plugin asked for.
    """

    API_VERSION: ClassVar[int] = 1
    """The plugin interface version this class was written for; the loader refuses newer."""

    name: ClassVar[str] = ""
    """Unique name used in ``[strategy] name = ...``; lowercase, digits and ``_``."""

    Params: ClassVar[type[StrategyParams]] = StrategyParams
    """The pydantic model ``[strategy.params]`` is validated against."""

    timer_interval_s: ClassVar[float | None] = None
    """How often :meth:`on_timer` runs; ``None`` (the default) never."""

    params: StrategyParams

    def __init__(self, params: StrategyParams | None = None) -> None:
        self.params = params if params is not None else self.Params()

    @classmethod
    def from_params(
        cls, raw: Mapping[str, Any] | None, *, source: str = "strategy.params"
    ) -> Strategy:
        """Build the strategy from an untrusted params table; errors name the field."""
        try:
            params = cls.Params.model_validate(dict(raw or {}))
        except ValidationError as exc:
            problems = []
            for error in exc.errors():
                where = ".".join(str(part) for part in error["loc"])
                problems.append(
                    f"{source}.{where}: {error['msg']}" if where else f"{source}: {error['msg']}"
                )
            raise ConfigError("; ".join(problems)) from None
        return cls(params)

    @classmethod
    def description(cls) -> str:
        """The first line of the class docstring: what ``arbot strategy list`` shows."""
        doc = (cls.__doc__ or "").strip()
        return doc.splitlines()[0].strip() if doc else ""

    def books(self, markets: Mapping[BookKey, Market]) -> Iterable[BookKey]:
        """The books this strategy needs, chosen from every configured market.

        The engine streams only these and calls :meth:`on_book` only for them. The
        default is every configured book.
        """
        return list(markets)

    def on_start(self, ctx: StrategyContext) -> None:  # noqa: B027 (optional hook)
        """Called once before the first update, with markets, fees and balances loaded."""

    @abstractmethod
    def on_book(self, update: BookUpdate, ctx: StrategyContext) -> list[Opportunity]:
        """React to one book update; ``ctx`` already holds it. Return opportunities."""

    def on_fill(self, fill: Fill, ctx: StrategyContext) -> None:  # noqa: B027 (optional hook)
        """Called for each fill of an order from one of this strategy's opportunities."""

    def on_timer(self, ctx: StrategyContext) -> list[Opportunity]:
        """Called every ``timer_interval_s`` seconds when that is set."""
        return []

    def screen(self, ctx: StrategyContext) -> Sequence[Crossing] | None:
        """Optional: top-of-book tests of which one holds whenever :meth:`on_book` can
        propose anything (after fees and edge, with any balances). Backtests evaluate
        them on every update at C speed and call :meth:`on_book` only where one holds,
        which is what makes them fast. Asked once, after :meth:`on_start`.

        The contract is one-sided: a test may hold where nothing is proposed, but when
        none holds after an update, :meth:`on_book` must return nothing for it. ``None``
        (the default) means no screen: :meth:`on_book` runs on every update.
        """
        return None
