"""``arbot config``: validate and show the effective settings."""

from __future__ import annotations

import typer

from arbot.cli._common import ConfigOption, JsonOption, load_settings, print_json

app = typer.Typer(help="Validate and show settings.", no_args_is_help=True)


@app.command("check")
def check(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Validate the settings and print them with secrets masked (exit 0 valid, 2 invalid)."""
    from arbot.config import DEFAULT_CONFIG_PATH
    from arbot.tomlout import dumps

    settings = load_settings(config)
    if as_json:
        print_json(settings.masked())
        return
    path = config or DEFAULT_CONFIG_PATH
    typer.echo(
        f"# {path}: valid (mode {settings.mode}, {len(settings.venues)} venue(s), "
        f"strategy {settings.strategy.name})"
    )
    typer.echo(dumps(settings.masked(mode="python")), nl=False)
