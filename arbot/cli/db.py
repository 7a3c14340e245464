"""``arbot db``: inspect the book of record."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from arbot.cli._common import ConfigOption, JsonOption, print_json

app = typer.Typer(help="Inspect the database (runs, orders, fills, ...).", no_args_is_help=True)


@app.command("info")
def info(
    config: ConfigOption = None,
    database_url: Annotated[
        str | None,
        typer.Option("--database-url", help="Inspect this URL instead of the config's."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Where the database is, its schema version and row counts. Changes nothing."""
    from arbot.store import describe_database

    url = database_url or _configured_url(config)
    report = describe_database(url)
    if as_json:
        print_json(report.as_dict())
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"database: {report.url}")
    console.print(f"location: {report.location}")
    if not report.exists:
        console.print("schema:   none yet (created on first run)")
        return
    console.print(
        f"schema:   version {report.schema_version} (this arbot: {report.expected_version})"
    )
    table = Table("table", "rows")
    for name, count in report.row_counts.items():
        table.add_row(name, f"{count:,}")
    console.print(table)


def _configured_url(config: Path | None) -> str:
    from arbot.config import DEFAULT_CONFIG_PATH, Settings, load_settings

    if config is None and not DEFAULT_CONFIG_PATH.exists():
        return Settings().database_url  # defaults plus ARBOT_* environment
    return load_settings(config).database_url
