"""The root typer app. Groups are registered here; their heavy imports live in commands."""

from __future__ import annotations

from typing import Annotated

import typer

from arbot import __version__
from arbot.cli import _common
from arbot.cli.lazy import LazyGroup

HELP = """arbot: multi-exchange crypto arbitrage with trade-only keys.

Exit codes: 0 ok, 1 a check found a problem (or a halted daemon), 2 bad input
(arguments, config, keystore, data, database), 130 interrupted.
"""


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"arbot {__version__}")
        raise typer.Exit(0)


def _root(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
    log_json: Annotated[
        bool, typer.Option("--log-json", help="Log JSON lines (overrides log.json).")
    ] = False,
    log_level: Annotated[
        str | None, typer.Option("--log-level", help="TRACE, DEBUG, INFO, WARNING or ERROR.")
    ] = None,
) -> None:
    ctx.obj = _common.CliState(log_json=log_json, log_level=log_level)


def build_app() -> typer.Typer:
    app = typer.Typer(
        name="arbot",
        help=HELP,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        context_settings={"help_option_names": ["-h", "--help"]},
        cls=LazyGroup,
    )
    app.callback()(_root)  # commands come from arbot.cli.lazy.COMMANDS, built when used
    return app
