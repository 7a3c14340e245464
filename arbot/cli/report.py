"""``arbot report``: trades and PnL from the database, as a table, JSON or an HTML page."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from arbot.cli._common import ConfigOption, JsonOption

if TYPE_CHECKING:
    from datetime import datetime


def report(
    config: ConfigOption = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="Only what happened since: an ISO date-time (UTC unless it has an offset) "
            "or an age such as 30m, 24h, 7d.",
        ),
    ] = None,
    run: Annotated[int | None, typer.Option("--run", help="Only this run id.")] = None,
    database_url: Annotated[
        str | None,
        typer.Option("--database-url", help="Read this database instead of the config's."),
    ] = None,
    html: Annotated[
        Path | None,
        typer.Option("--html", help="Also write an HTML page with plots to this file."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Summarise trades and PnL from the database.

    Opportunities seen and taken, rejections by reason, outcomes, orders by status,
    fills, realised PnL, fees and turnover. --html writes a self-contained page (PnL
    over time, edge distribution).

    Exit codes: 0 printed; 2 bad option, configuration or database.
    """
    from arbot.cli.db import _configured_url
    from arbot.errors import ArbotError
    from arbot.fileio import atomic_write_text
    from arbot.report.html import render, summary_rows
    from arbot.report.trades import build_report
    from arbot.store import Store, describe_database

    start = parse_since(since) if since else None
    url = database_url or _configured_url(config)
    if not describe_database(url).exists:
        raise ArbotError(f"{url}: no database yet; run arbot run or arbot demo first")
    with Store(url) as store:
        result = build_report(store, since=start, run_id=run)
    if html is not None:
        atomic_write_text(html, render(result))
    if as_json:
        from arbot.cli._common import print_json

        print_json({**result.to_dict(), "html": str(html) if html else None})
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("", "", title="arbot report", show_header=False)
    for key, value in summary_rows(result):
        table.add_row(key, value)
    console = Console()
    console.print(table)
    if html is not None:
        console.print(f"HTML report: {html}")


def parse_since(text: str) -> datetime:
    """An ISO date-time or an age (``90s``, ``30m``, ``24h``, ``7d``) -> aware UTC datetime."""
    import re
    from datetime import UTC, datetime, timedelta

    from arbot.errors import ArbotError

    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd])", text.strip())
    if match:
        unit = {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
        return datetime.now(UTC) - timedelta(seconds=float(match.group(1)) * unit)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ArbotError(
            f"--since {text!r}: expected an ISO date-time like 2026-11-27T12:00 or an age "
            "like 30m, 24h, 7d"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def register(app: typer.Typer) -> None:
    app.command("report")(report)
