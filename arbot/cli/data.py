"""``arbot data``: inspect recorded and imported book datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from arbot.cli._common import JsonOption, print_json

app = typer.Typer(help="Import and inspect recorded market data.", no_args_is_help=True)


@app.command("import")
def import_(
    fmt: Annotated[
        str,
        typer.Argument(metavar="FORMAT", help="snapshot-csv, binance-capture, tardis or arbot."),
    ],
    source: Annotated[Path, typer.Argument(help="File or folder to import.")],
    out: Annotated[Path, typer.Option("--out", help="Dataset folder (created if missing).")],
    venue: Annotated[str | None, typer.Option("--venue", help="Only this venue.")] = None,
    symbol: Annotated[str | None, typer.Option("--symbol", help="Only this symbol.")] = None,
    depth: Annotated[int, typer.Option("--depth", help="Levels per side to keep.")] = 20,
) -> None:
    """Import recorded books into a dataset (checked whole before anything is written)."""
    from arbot.errors import ArbotError
    from arbot.feeds.importers import import_books

    if not 1 <= depth <= 1000:
        raise ArbotError(f"--depth {depth}: expected 1..1000 levels")
    stats = import_books(fmt, source, out, depth=depth, venue=venue, symbol=symbol)
    for (name, sym), rows in sorted(stats.rows.items()):
        typer.echo(f"{name} {sym}: {rows:,} rows")
    typer.echo(f"imported into {out}")


@app.command("info")
def info(
    directory: Annotated[Path, typer.Argument(help="Dataset folder.")],
    as_json: JsonOption = False,
) -> None:
    """Venues, symbols, time span and row counts of a dataset."""
    from arbot.errors import ArbotError
    from arbot.feeds.dataset import PartitionInfo, dataset_info

    if not directory.is_dir():
        raise ArbotError(f"{directory}: no such folder; record one with arbot record --out DIR")
    merged: dict[tuple[str, str], list[PartitionInfo]] = {}
    for partition in dataset_info(directory):
        merged.setdefault((partition.venue, partition.symbol), []).append(partition)
    rows = [
        {
            "venue": venue,
            "symbol": symbol,
            "rows": sum(p.rows for p in parts),
            "files": sum(p.files for p in parts),
            "first": min(p.first_received for p in parts).isoformat(),
            "last": max(p.last_received for p in parts).isoformat(),
        }
        for (venue, symbol), parts in merged.items()
    ]
    if as_json:
        print_json([{k: r[k] for k in ("venue", "symbol", "rows", "first", "last")} for r in rows])
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(
        "venue", "symbol", "rows", "files", "first (UTC)", "last (UTC)", title=str(directory)
    )
    for r in rows:
        table.add_row(
            str(r["venue"]),
            str(r["symbol"]),
            f"{r['rows']:,}",
            str(r["files"]),
            str(r["first"]),
            str(r["last"]),
        )
    Console().print(table if rows else f"{directory}: no recorded books")
