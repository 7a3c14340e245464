"""``arbot backtest``: replay a dataset through the configured strategy, risk and executor."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from arbot.cli._common import ConfigOption, JsonOption

if TYPE_CHECKING:
    from arbot.backtest.runner import BacktestResult
    from arbot.config import Settings


def backtest(
    ctx: typer.Context,
    data: Annotated[
        Path,
        typer.Option(
            "--data",
            help="Dataset folder (written by arbot record or arbot data import).",
            show_default=False,
        ),
    ],
    config: ConfigOption = None,
    start: Annotated[
        str | None,
        typer.Option("--from", help="Replay from this time (ISO, UTC unless an offset is given)."),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option("--to", help="Replay up to (not including) this time (ISO, UTC)."),
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option(
            "--report", help="Folder for summary.json, trades.csv and report.html (created)."
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            "--seed", min=0, help="Seed of the latency draws (default: the backtest section's)."
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Replay recorded books through strategy, risk and executor.

    Every book the strategy asks for is read from --data (venue names as in the
    settings), merged in time order (updates received at the same instant are one
    moment), and fed to the same engine as arbot run, with simulated venues: starting
    balances and fees from each venue's settings, latency and market grids from the
    backtest section. The run is stored in the database (mode backtest). Same data,
    settings and seed: identical results.

    Exit codes: 0 done; 2 bad input (settings, data folder, empty selection, times).
    """
    import sys

    from arbot.backtest.runner import Backtest
    from arbot.cli._common import load_settings, setup_logging
    from arbot.errors import ArbotError

    settings = load_settings(config)
    setup_logging(ctx, settings)
    start_ns = None if start is None else parse_time(start, "--from")
    end_ns = None if end is None else parse_time(end, "--to")
    if start_ns is not None and end_ns is not None and start_ns >= end_ns:
        raise ArbotError(f"--from {start} is not before --to {end}: nothing to replay")
    if not data.is_dir():
        raise ArbotError(
            f"--data {data}: no such folder; record books with arbot record or import "
            "them with arbot data import"
        )
    show_bar = not as_json and sys.stderr.isatty()
    bar = _Bar(_total(settings, data, start_ns, end_ns)) if show_bar else None
    try:
        result = Backtest(
            settings,
            data,
            start_ns=start_ns,
            end_ns=end_ns,
            seed=seed,
            progress=bar.update if bar is not None else None,
            report=report,
        ).run()
    finally:
        if bar is not None:
            bar.stop()
    _print(result, settings, report, as_json)


def parse_time(text: str, option: str) -> int:
    """An ISO date or date-time (UTC unless it has an offset) as ns since the epoch."""
    from datetime import UTC, datetime, timedelta

    from arbot.errors import ArbotError

    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ArbotError(
            f"{option} {text!r}: expected an ISO date-time like 2021-08-20T00:30 "
            "(UTC unless it has an offset)"
        ) from None
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return (aware - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1000


def _total(settings: Settings, data: Path, start_ns: int | None, end_ns: int | None) -> int:
    """Rows of the configured books in partitions that overlap the window (an estimate
    for the progress bar: a partial day counts whole)."""
    from arbot.feeds.dataset import dataset_info

    books = {(v, s) for v, c in settings.venues.items() for s in c.symbols}
    return sum(
        p.rows
        for p in dataset_info(data)
        if (p.venue, p.symbol) in books
        and (start_ns is None or p.last_ns >= start_ns)
        and (end_ns is None or p.first_ns < end_ns)
    )


class _Bar:
    """A rich progress bar of book updates replayed, on stderr."""

    def __init__(self, total: int) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("replaying"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("updates"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self.task = self.progress.add_task("replay", total=total or None)
        self.progress.start()

    def update(self, done: int) -> None:
        self.progress.update(self.task, completed=done)

    def stop(self) -> None:
        self.progress.stop()


def _print(result: BacktestResult, settings: Settings, report: Path | None, as_json: bool) -> None:
    from arbot.redact import mask_url_password

    extra: dict[str, Any] = {
        "run_id": result.run_id,
        "database": mask_url_password(settings.database_url),
        "report": str(report) if report is not None else None,
    }
    if as_json:
        from arbot.cli._common import print_json

        print_json({**extra, **result.summary})
        return
    from rich.console import Console
    from rich.table import Table

    s = result.summary
    quote = s["quote"]
    table = Table("", "", title=f"backtest run {result.run_id}: {s['strategy']}", show_header=False)
    table.add_row("replayed (UTC)", f"{s['first']} .. {s['last']}")
    table.add_row("book updates", f"{s['updates']:,} in {s['moments']:,} moments")
    table.add_row("opportunities seen", f"{s['opportunities_seen']:,}")
    table.add_row("opportunities taken", f"{s['opportunities_taken']:,}")
    for reason, count in s["rejected"].items():
        table.add_row(f"rejected: {reason}", f"{count:,}")
    for outcome, count in s["outcomes"].items():
        table.add_row(f"outcome: {outcome}", f"{count:,}")
    table.add_row("orders / fills", f"{s['orders']:,} / {s['fills']:,}")
    table.add_row("legs unwound", f"{s['legs_unwound']:,}")
    table.add_row(f"PnL net ({quote})", s["pnl_net_quote"])
    table.add_row(f"fees ({quote})", s["fees_quote"])
    table.add_row(f"PnL gross ({quote})", s["pnl_gross_quote"])
    table.add_row(f"turnover ({quote})", s["turnover_quote"])
    table.add_row(f"max drawdown ({quote})", s["max_drawdown_quote"])
    for asset, drift in s["inventory_drift"].items():
        table.add_row(f"inventory drift {asset}", f"max deviation {drift['max_deviation']}")
    table.add_row("database", str(extra["database"]))
    if report is not None:
        table.add_row("report", str(report))
    Console().print(table)


def register(app: typer.Typer) -> None:
    app.command("backtest")(backtest)
