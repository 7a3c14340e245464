"""``arbot data``: inspect recorded and imported book datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from arbot.cli._common import JsonOption, print_json

app = typer.Typer(help="Import and inspect recorded market data.", no_args_is_help=True)


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
