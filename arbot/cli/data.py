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
    as_json: JsonOption = False,
) -> None:
    """Import recorded books into a dataset (kept only if every line checks out).

    Formats: snapshot-csv (timestamp,symbol,b1..bN,bv1..bvN,a1..aN,av1..avN rows, or a
    folder of orderbook_*.csv), binance-capture (websocket capture with a REST snapshot
    line, gzip or text), tardis (book_snapshot_N or incremental_book_L2 CSV, gzip or
    text; a folder imports every Tardis file in it), arbot (another arbot dataset).

    Exit codes: 0 imported; 2 bad input (one line naming the file and line; nothing
    is written to --out).
    """
    import sys

    from arbot.errors import ArbotError
    from arbot.feeds.importers import import_books

    if not 1 <= depth <= 1000:
        raise ArbotError(f"--depth {depth}: expected 1..1000 levels")
    if as_json or not sys.stderr.isatty():
        stats = import_books(fmt, source, out, depth=depth, venue=venue, symbol=symbol)
    else:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        with Progress(
            SpinnerColumn(),
            TextColumn("importing {task.description}: {task.completed:,} events"),
            TimeElapsedColumn(),
            transient=True,
        ) as bar:
            task = bar.add_task(source.name, total=None)
            stats = import_books(
                fmt,
                source,
                out,
                depth=depth,
                venue=venue,
                symbol=symbol,
                progress=lambda n: bar.update(task, completed=n),
            )
    rows = [
        {"venue": name, "symbol": sym, "rows": count}
        for (name, sym), count in sorted(stats.rows.items())
    ]
    if as_json:
        print_json(
            {
                "out": str(out),
                "imported": rows,
                "first": _iso(stats.first_ns),
                "last": _iso(stats.last_ns),
                "files": [str(p) for p in stats.files],
            }
        )
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("venue", "symbol", "rows", title=f"imported into {out}")
    for row in rows:
        table.add_row(str(row["venue"]), str(row["symbol"]), f"{row['rows']:,}")
    Console().print(table)
    typer.echo(f"time span (UTC): {_iso(stats.first_ns)} .. {_iso(stats.last_ns)}")


def _iso(ns: int | None) -> str | None:
    if ns is None:
        return None
    import datetime as dt

    moment = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=ns // 1000)
    return moment.isoformat()


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
