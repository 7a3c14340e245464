"""``arbot strategy``: list, scaffold and describe strategy plugins.

Discovery rules live in :mod:`arbot.strategy.loader`; the tutorial is ``docs/strategies.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from arbot.cli._common import ConfigOption, JsonOption, print_json

if TYPE_CHECKING:
    from arbot.config import Settings
    from arbot.strategy.loader import Discovery

app = typer.Typer(help="List, scaffold and describe strategy plugins.", no_args_is_help=True)

PathOption = Annotated[
    Path | None,
    typer.Option(
        "--path",
        help="Strategies folder. Default: strategy.path of the settings (strategies/).",
        show_default=False,
    ),
]


def _settings(config: Path | None) -> Settings:
    """Settings from ``-c`` (required to exist) or the default file, else built-in defaults."""
    from arbot.config import DEFAULT_CONFIG_PATH, Settings, load_settings

    if config is None and not DEFAULT_CONFIG_PATH.exists():
        return Settings()
    return load_settings(config)


def _folder(config: Path | None, path: Path | None) -> Path:
    if path is not None:
        if path.exists() and not path.is_dir():
            from arbot.errors import ArbotError

            raise ArbotError(f"--path {path}: not a folder")
        return path
    return _settings(config).strategy.path


def _discover(config: Path | None, path: Path | None) -> Discovery:
    from arbot.errors import ArbotError
    from arbot.strategy.loader import discover

    folder = _folder(config, path)
    if path is not None and not path.is_dir():
        raise ArbotError(f"--path {path}: no such folder")
    found = discover(folder)
    for problem in found.problems:
        _err(f"warning: {problem}")
    for local, hidden in found.overridden:
        _err(f"note: {local.source} overrides {local.name} from {hidden.source}")
    if not found.folder_exists:
        _err(f"note: no strategies folder {folder}; only installed plugins are listed")
    return found


def _err(line: str) -> None:
    typer.echo(f"arbot: {line}", err=True)


@app.command("list")
def list_strategies(
    config: ConfigOption = None,
    path: PathOption = None,
    as_json: JsonOption = False,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit 1 when any plugin has a problem.")
    ] = False,
) -> None:
    """List the strategy plugins: name, source (file or entry point), description.

    Broken plugins are skipped; each is reported on stderr in one line naming its file.

    Exit codes:
    0  listed (even when some plugins are broken, unless --strict)
    1  --strict and some plugin has a problem
    2  bad settings file or --path
    """
    found = _discover(config, path)
    infos = list(found.strategies.values())
    if as_json:
        print_json(
            {
                "folder": None if found.folder is None else str(found.folder),
                "strategies": [
                    {
                        "name": info.name,
                        "source": info.source,
                        "description": info.description,
                        "class": info.class_path,
                        "file": None if info.file is None else str(info.file),
                    }
                    for info in infos
                ],
                "problems": [
                    {"source": p.source, "message": p.message, "name": p.name}
                    for p in found.problems
                ],
                "overridden": [
                    {"name": local.name, "source": local.source, "hidden": hidden.source}
                    for local, hidden in found.overridden
                ],
            }
        )
    elif not infos:
        typer.echo("no strategy plugins found")
    else:
        rows = [("NAME", "SOURCE", "DESCRIPTION")]
        rows += [(info.name, info.source, info.description) for info in infos]
        typer.echo(_columns(rows))
    if strict and found.problems:
        raise typer.Exit(1)


@app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="Strategy name, as listed by arbot strategy list.")],
    config: ConfigOption = None,
    path: PathOption = None,
    as_json: JsonOption = False,
) -> None:
    """A plugin's description, source and params: types, defaults, bounds and docs.

    Exit codes:
    0  shown
    2  no such strategy, the plugin is broken, bad settings file or --path
    """
    from pydantic_core import to_jsonable_python

    from arbot.strategy.loader import describe_params, pick

    info = pick(_discover(config, path), name)
    params = describe_params(info.cls)
    if as_json:
        print_json(
            {
                "name": info.name,
                "description": info.description,
                "source": info.source,
                "class": info.class_path,
                "api_version": info.cls.API_VERSION,
                "params": [
                    {
                        "name": p.name,
                        "type": p.type,
                        "required": p.required,
                        "default": None
                        if p.required
                        else to_jsonable_python(p.default, fallback=str),
                        "constraints": p.constraints,
                        "description": p.description,
                    }
                    for p in params
                ],
            }
        )
        return

    typer.echo(f"{info.name}: {info.description or '(no description)'}")
    typer.echo(f"source: {info.source}")
    typer.echo(f"class:  {info.class_path} (plugin API {info.cls.API_VERSION})")
    typer.echo("")
    if not params:
        typer.echo("params: none")
        return
    rows = [("PARAM", "TYPE", "DEFAULT", "DESCRIPTION")]
    for p in params:
        text = p.description or "(undocumented)"
        if p.constraints:
            text += f" [{p.constraints}]"
        default = "(required)" if p.required else _toml_value(p.default)
        rows.append((p.name, p.type, default, text))
    typer.echo("params ([strategy.params]):")
    typer.echo(_columns(rows, indent="  "))
    typer.echo("")
    typer.echo("in config/arbot.toml:")
    typer.echo(f'  [strategy]\n  name = "{info.name}"\n\n  [strategy.params]')
    for p in params:
        if p.required:
            typer.echo(f"  # {p.name} = ...  (required)")
        elif p.default is None:
            typer.echo(f"  # {p.name} = (not set)")
        else:
            typer.echo(f"  {p.name} = {_toml_value(p.default)}")


@app.command("new")
def new(
    name: Annotated[
        str, typer.Argument(help="Strategy name: lowercase letters, digits and _ (a module name).")
    ],
    config: ConfigOption = None,
    path: PathOption = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
) -> None:
    """Scaffold a documented plugin DIR/NAME.py and its tests DIR/test_NAME.py.

    The tests load the plugin by path and use only arbot.testing; they pass as written.
    Run them with: python -m pytest DIR/test_NAME.py

    Exit codes:
    0  written
    2  bad name, files exist (without --force), bad settings file
    """
    from arbot.errors import ArbotError
    from arbot.fileio import atomic_write_text

    _check_new_name(name)
    folder = _folder(config, path)
    plugin = folder / f"{name}.py"
    test = folder / f"test_{name}.py"
    existing = [str(file) for file in (plugin, test) if file.exists()]
    if existing and not force:
        raise ArbotError(f"{', '.join(existing)}: already exists; pass --force to overwrite")
    if folder.is_dir():
        from arbot.strategy.loader import discover

        taken = discover(folder).strategies.get(name)
        if taken is not None and taken.file is not None and taken.file != plugin.resolve():
            if taken.source.startswith("entry point"):
                _err(f"note: {plugin} will override {name} from {taken.source}")
            elif not force:
                raise ArbotError(
                    f"{name}: already the name of a strategy in {taken.source}; choose another "
                    "name (or pass --force)"
                )
    class_name = "".join(part.capitalize() for part in name.split("_") if part)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(plugin, _render(PLUGIN_TEMPLATE, name, class_name))
        atomic_write_text(test, _render(TEST_TEMPLATE, name, class_name))
    except OSError as exc:
        raise ArbotError(f"{exc.filename or folder}: {exc.strerror}; check the path") from None
    typer.echo(f"wrote {plugin}")
    typer.echo(f"wrote {test}")
    typer.echo(f"next: python -m pytest {test}, then arbot strategy show {name}")


def _toml_value(value: Any) -> str:
    """``value`` as TOML spells it right of ``=`` (a table inline); ``(not set)`` for None."""
    from arbot.tomlout import dumps

    if value is None:
        return "(not set)"
    # Inside a list, tomlout writes tables inline: render [value] and unwrap it.
    return dumps({"x": [value]}).strip().removeprefix("x = [").removesuffix("]")


def _check_new_name(name: str) -> None:
    import keyword
    import sys

    from arbot.errors import ArbotError
    from arbot.strategy.loader import NAME_PATTERN

    if not NAME_PATTERN.match(name) or keyword.iskeyword(name):
        raise ArbotError(
            f"{name!r}: not a valid strategy name; use lowercase letters, digits and _, "
            "starting with a letter (it becomes a file and module name)"
        )
    if name.startswith("test_") or name.endswith("_test") or name == "conftest":
        raise ArbotError(f"{name!r}: names of test files are not plugins; choose another name")
    if name in sys.stdlib_module_names or name in {"arbot", "strategies", "tests", "pytest"}:
        raise ArbotError(
            f"{name!r}: would shadow the Python module {name} when tests run; choose another name"
        )


def _render(template: str, name: str, class_name: str) -> str:
    return template.replace("__NAME__", name).replace("__CLASS__", class_name)


def _columns(rows: Sequence[Sequence[str]], indent: str = "") -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append((indent + "  ".join([*cells, row[-1]])).rstrip())
    return "\n".join(lines)


PLUGIN_TEMPLATE = '''\
"""__NAME__: an arbot strategy plugin (scaffolded by ``arbot strategy new``; edit freely).

The contract in short (docs/strategies.md has the rest):

* ``name`` is what ``[strategy] name = "__NAME__"`` selects; ``Params`` validates
  ``[strategy.params]`` (``arbot strategy show __NAME__`` lists it, with the
  descriptions below).
* ``books`` picks the books to stream; ``on_book`` runs for every update of them. It
  must be quick, synchronous and pure: read ``ctx``, return opportunities, no I/O.
* Legs must sit on their market's grid and within its limits, and the free balances
  must cover them: risk refuses anything else (``arbot.testing`` checks the same).
* ``screen`` (optional) makes backtests fast: top-of-book tests of which one holds
  whenever ``on_book`` can propose anything; a backtest runs ``on_book`` only there.

This example is a complete (if naive) strategy: when one venue's best bid for a symbol
is above another venue's best ask by more than both taker fees and ``min_edge_bps``,
buy the ask and sell the bid, sized by the top levels, ``max_amount`` and balances.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal

from pydantic import Field

from arbot.model import BookStamp, Leg, Market, Opportunity, OrderBook, Side, to_decimal
from arbot.strategy import (
    BookKey,
    BookUpdate,
    Crossing,
    Strategy,
    StrategyContext,
    StrategyParams,
)

BPS = Decimal(10_000)


class __CLASS__Params(StrategyParams):
    """``[strategy.params]`` of __NAME__: every field has a default and a description."""

    symbols: list[str] = Field(
        default_factory=list,
        description="Symbols to trade; empty means every configured symbol.",
    )
    min_edge_bps: Decimal = Field(
        default=Decimal(10),
        ge=0,
        description="Smallest edge after taker fees, in bps of the notional bought.",
    )
    max_amount: Decimal = Field(
        default=Decimal("0.01"),
        gt=0,
        description="Largest amount of base currency per opportunity.",
    )


class __CLASS__(Strategy):
    """Buy one venue's best ask and sell another's best bid when the gap beats the fees."""

    name = "__NAME__"
    Params = __CLASS__Params
    params: __CLASS__Params

    def books(self, markets: Mapping[BookKey, Market]) -> Iterable[BookKey]:
        wanted = set(self.params.symbols)
        return [key for key in markets if not wanted or key[1] in wanted]

    def screen(self, ctx: StrategyContext) -> list[Crossing]:
        """on_book proposes nothing unless one venue's best bid is above another's best
        ask (its first exit below): a backtest skips every update where none is."""
        books = list(self.books(ctx.markets))
        return [
            Crossing(sell, 1.0, buy, 1.0)
            for sell in books
            for buy in books
            if sell[1] == buy[1] and sell[0] != buy[0]
        ]

    def on_book(self, update: BookUpdate, ctx: StrategyContext) -> list[Opportunity]:
        symbol = update.symbol
        # The lowest ask and the highest bid among this symbol's fresh books.
        buy: OrderBook | None = None
        sell: OrderBook | None = None
        for venue in ctx.venues_for(symbol):
            book = ctx.book(venue, symbol)
            if book is None or not (book.bids and book.asks) or ctx.is_stale(venue, symbol):
                continue
            if buy is None or book.asks[0][0] < buy.asks[0][0]:
                buy = book
            if sell is None or book.bids[0][0] > sell.bids[0][0]:
                sell = book
        if buy is None or sell is None or buy.venue == sell.venue:
            return []
        ask_price, ask_size = buy.asks[0]
        bid_price, bid_size = sell.bids[0]
        if bid_price <= ask_price:
            return []  # the cheap exit most updates take: floats only, nothing allocated
        buy_market = ctx.market(buy.venue, symbol)
        sell_market = ctx.market(sell.venue, symbol)
        if buy_market is None or sell_market is None:
            return []
        buy_price = buy_market.round_limit_price(to_decimal(ask_price), Side.BUY)
        sell_price = sell_market.round_limit_price(to_decimal(bid_price), Side.SELL)
        # Quote earned per unit of base after both taker fees.
        unit_edge = sell_price * (1 - sell_market.taker_fee) - buy_price * (
            1 + buy_market.taker_fee
        )
        if unit_edge * BPS < self.params.min_edge_bps * buy_price:
            return []
        # Size: the two top levels, the cap, and what the free balances can pay for
        # (a venue locks the notional plus the taker fee for a buy).
        amount = min(
            to_decimal(ask_size),
            to_decimal(bid_size),
            self.params.max_amount,
            ctx.balance(buy.venue, buy_market.quote) / (buy_price * (1 + buy_market.taker_fee)),
            ctx.balance(sell.venue, sell_market.base),
        )
        amount = sell_market.round_amount(buy_market.round_amount(amount))
        if buy_market.order_problem(amount, buy_price) or sell_market.order_problem(
            amount, sell_price
        ):
            return []  # too small for a venue's minimums (or nothing to trade with)
        return [
            Opportunity(
                strategy=self.name,
                legs=(
                    Leg(buy.venue, symbol, Side.BUY, amount, buy_price),
                    Leg(sell.venue, symbol, Side.SELL, amount, sell_price),
                ),
                edge_quote=unit_edge * amount,
                edge_bps=unit_edge / buy_price * BPS,
                quote=buy_market.quote,
                created_ns=ctx.now_ns,
                books=(
                    BookStamp(buy.venue, symbol, buy.timestamp_ms, buy.received_ns),
                    BookStamp(sell.venue, symbol, sell.timestamp_ms, sell.received_ns),
                ),
            )
        ]
'''

TEST_TEMPLATE = '''\
"""Tests of the __NAME__ strategy plugin; run them with ``python -m pytest`` on this file.

Plain lists through ``arbot.testing``: no network, no event loop, no engine.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from arbot.errors import ConfigError
from arbot.feeds.book_feed import BookUpdate
from arbot.testing import assert_valid_opportunity, book_update, load_plugin, market, run_strategy

# Loaded by path and checked exactly as arbot discovers it (name, API version, Params).
__CLASS__ = load_plugin(Path(__file__).with_name("__NAME__.py"))

MARKETS = [market("binance", "BTC/USDT"), market("okx", "BTC/USDT")]  # 10 bps taker fees
BALANCES = {
    ("binance", "USDT"): "10000",
    ("binance", "BTC"): "1",
    ("okx", "USDT"): "10000",
    ("okx", "BTC"): "1",
}


def books(binance: tuple[float, float], okx: tuple[float, float]) -> list[BookUpdate]:
    """One update per venue from (best bid, best ask), 0.5 BTC on each level."""
    return [
        book_update("binance", "BTC/USDT", bids=[(binance[0], 0.5)], asks=[(binance[1], 0.5)]),
        book_update("okx", "BTC/USDT", bids=[(okx[0], 0.5)], asks=[(okx[1], 0.5)]),
    ]


def test_nothing_when_the_venues_agree() -> None:
    run = run_strategy(
        __CLASS__(),
        books((60000.0, 60000.5), (60000.1, 60000.6)),
        markets=MARKETS,
        balances=BALANCES,
    )
    assert run.updates == 2
    assert run.opportunities == []


def test_buys_the_cheap_venue_and_sells_the_dear_one() -> None:
    run = run_strategy(
        __CLASS__(),
        books((59900.0, 59900.5), (60100.0, 60100.5)),
        markets=MARKETS,
        balances=BALANCES,
    )
    [opportunity] = run.opportunities
    buy, sell = opportunity.legs
    assert (buy.venue, buy.side, buy.limit_price) == ("binance", "buy", Decimal("59900.5"))
    assert (sell.venue, sell.side, sell.limit_price) == ("okx", "sell", Decimal("60100.0"))
    assert buy.amount == sell.amount == Decimal("0.01")  # the default max_amount
    assert opportunity.edge_quote > 0
    assert_valid_opportunity(opportunity, run.context)


def test_fees_eat_a_small_gap() -> None:
    # A 5 bps gap is less than the 20 bps of taker fees on the two legs.
    run = run_strategy(
        __CLASS__(),
        books((59990.0, 60000.0), (60030.0, 60040.0)),
        markets=MARKETS,
        balances=BALANCES,
    )
    assert run.opportunities == []


def test_min_edge_bps_comes_from_params() -> None:
    wide = books((59900.0, 59900.5), (60100.0, 60100.5))  # about 13 bps after fees
    strict = __CLASS__.from_params({"min_edge_bps": 50})
    assert run_strategy(strict, wide, markets=MARKETS, balances=BALANCES).opportunities == []
    loose = __CLASS__.from_params({"min_edge_bps": 5})
    assert len(run_strategy(loose, wide, markets=MARKETS, balances=BALANCES).opportunities) == 1


def test_the_quote_balance_limits_the_size() -> None:
    balances = {**BALANCES, ("binance", "USDT"): "300"}
    run = run_strategy(
        __CLASS__(),
        books((59900.0, 59900.5), (60100.0, 60100.5)),
        markets=MARKETS,
        balances=balances,
    )
    [opportunity] = run.opportunities
    # 300 USDT buys 300 / (59900.5 * 1.001) = 0.0050033 BTC, 0.00500 on the lot grid.
    assert opportunity.legs[0].amount == Decimal("0.00500")
    assert opportunity.legs[0].notional * Decimal("1.001") <= Decimal(300)


def test_bad_params_name_the_field() -> None:
    with pytest.raises(ConfigError, match="min_edge_bps"):
        __CLASS__.from_params({"min_edge_bps": -1})
'''
