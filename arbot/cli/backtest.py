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
        str,
        typer.Option(
            "--data",
            metavar="DIR",
            help="Dataset folder (written by arbot record or arbot data import); with "
            "--cluster, a path or file:// URL the workers can read.",
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
    sweep: Annotated[
        Path | None,
        typer.Option(
            "--sweep",
            metavar="FILE",
            help="Run a grid of backtests (TOML: [grid] settings keys and values to try); "
            "writes sweep.csv into --report or the current folder.",
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=0,
            help="With --sweep: local worker processes (0: every core; default: the sweep file's).",
        ),
    ] = None,
    cluster: Annotated[
        str | None,
        typer.Option(
            "--cluster",
            metavar="ADDRESS",
            help="With --sweep: run on this Dask distributed scheduler (tcp://HOST:PORT; "
            "needs arbot[cluster]).",
        ),
    ] = None,
    point: Annotated[
        int | None,
        typer.Option(
            "--point",
            min=1,
            metavar="N",
            help="With --sweep: run only point N of the grid, as a single backtest (stored, "
            "with --report if given): the sweep row's figures, with its trades and plots.",
        ),
    ] = None,
) -> None:
    """Replay recorded books through strategy, risk and executor.

    Every book the strategy asks for is read from --data (venue names as in the
    settings), merged in time order (updates received at the same instant are one
    moment), and fed to the same engine as arbot run, with simulated venues: starting
    balances and fees from each venue's settings, latency and market grids from the
    backtest section. The run is stored in the database (mode backtest). Same data,
    settings and seed: identical results.

    With --sweep FILE, one backtest per point of the file's grid (settings keys and the
    values to try), on every local core (--workers N) or on a Dask cluster (--cluster
    ADDRESS); one row per point in a table and in sweep.csv. Sweep runs are not stored;
    --point N runs one of them as a single backtest, stored and with its report.

    Exit codes: 0 done; 2 bad input (settings, data folder, empty selection, times,
    sweep file).
    """
    import sys

    from arbot.backtest.runner import Backtest
    from arbot.cli._common import load_settings, setup_logging
    from arbot.errors import ArbotError

    if sweep is None and (workers is not None or cluster is not None):
        option = "--workers" if workers is not None else "--cluster"
        raise ArbotError(f"{option} runs a sweep: add --sweep FILE")
    if workers is not None and cluster is not None:
        raise ArbotError("--workers is for local sweeps; a --cluster sweep uses its workers")
    if point is not None and (sweep is None or workers is not None or cluster is not None):
        raise ArbotError(
            "--point N picks one point of a sweep to run alone: give --sweep FILE, "
            "without --workers or --cluster"
        )
    settings = load_settings(config)
    # Each unwind is a warning in a daemon; in a backtest the summary counts them (and
    # --log-level INFO shows them all).
    setup_logging(ctx, settings, quiet={"arbot.engine.executor": "ERROR"})
    start_ns = None if start is None else parse_time(start, "--from")
    end_ns = None if end is None else parse_time(end, "--to")
    if start_ns is not None and end_ns is not None and start_ns >= end_ns:
        raise ArbotError(f"--from {start} is not before --to {end}: nothing to replay")
    if sweep is None or cluster is None:  # a cluster's workers may see what we do not
        from arbot.backtest.sweep import local_path

        folder = Path(data) if sweep is None else local_path(data)
        if not folder.is_dir():
            raise ArbotError(
                f"--data {data}: no such folder; record books with arbot record or import "
                "them with arbot data import"
            )
    if sweep is not None and point is not None:
        settings, seed = _sweep_point(sweep, settings, point, seed), None
    elif sweep is not None:
        _sweep(sweep, settings, data, start_ns, end_ns, seed, workers, cluster, report, as_json)
        return
    show_bar = not as_json and sys.stderr.isatty()
    bar = _Bar(_total(settings, Path(data), start_ns, end_ns)) if show_bar else None
    try:
        result = Backtest(
            settings,
            Path(data),
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
    """A rich progress bar (of book updates replayed, by default) on stderr."""

    def __init__(self, total: int, label: str = "replaying", unit: str = "updates") -> None:
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
            TextColumn(label),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(unit),
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
        share = float(drift["max_deviation"]) * 100  # exact in --json and summary.json
        table.add_row(f"inventory drift {asset}", f"{share:.2f} pp off an equal split")
    table.add_row("database", str(extra["database"]))
    if report is not None:
        table.add_row("report", str(report))
    Console().print(table)


def _sweep_point(file: Path, settings: Settings, number: int, seed: int | None) -> Settings:
    """Point ``number`` of the sweep in ``file``: its settings (seed included)."""
    from arbot.backtest import sweep
    from arbot.errors import ArbotError

    points = sweep.plan(settings, sweep.read_sweep(file), seed=seed)
    if number > len(points):
        raise ArbotError(
            f"--point {number}: {file} has {len(points)} point(s), numbered 1 to {len(points)}"
        )
    return points[number - 1].settings


def _sweep(
    file: Path,
    settings: Settings,
    data: str,
    start_ns: int | None,
    end_ns: int | None,
    seed: int | None,
    workers: int | None,
    cluster: str | None,
    report: Path | None,
    as_json: bool,
) -> None:
    """``--sweep FILE``: plan every point, run them, write sweep.csv, print the rows."""
    import sys
    import time

    from loguru import logger

    from arbot.backtest import sweep

    spec = sweep.read_sweep(file)
    points = sweep.plan(settings, spec, seed=seed)
    reference = sweep.data_reference(data)
    unset = {v for p in points for v, c in p.settings.venues.items() if c.taker_fee is None}
    for name in sorted(unset):  # said once here: the workers log errors only
        logger.warning("venues.{}.taker_fee is not set: the backtest charges no fee there", name)
    # Workers log errors only (with many runs at once, a warning per run is noise).
    levels = ("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL")
    level = max(settings.log.level, "ERROR", key=levels.index)
    bar = _Bar(len(points), "sweeping", "points") if not as_json and sys.stderr.isatty() else None
    progress = bar.update if bar is not None else None
    started = time.perf_counter()
    try:
        if cluster is not None:
            where = f"on the cluster at {cluster}"
            rows = sweep.run_cluster(
                points,
                reference,
                cluster,
                start_ns=start_ns,
                end_ns=end_ns,
                progress=progress,
                log_level=level,
            )
        else:
            count = workers if workers is not None else spec.workers
            count = max(1, min(count or sweep.local_cores(), len(points)))
            where = f"on {count} local worker{'s' if count > 1 else ''}"
            rows = sweep.run_local(
                points,
                reference,
                count,
                start_ns=start_ns,
                end_ns=end_ns,
                progress=progress,
                log_level=level,
            )
    finally:
        if bar is not None:
            bar.stop()
    elapsed = time.perf_counter() - started
    csv_path = sweep.write_csv((report or Path.cwd()) / "sweep.csv", spec.keys, rows)
    if as_json:
        from arbot.cli._common import print_json

        print_json({"sweep": str(file), "points": len(rows), "csv": str(csv_path), "rows": rows})
        return
    from decimal import Decimal

    from rich import box
    from rich.console import Console
    from rich.table import Table

    headers = ["seen", "taken", "fills", "PnL net", "fees", "max DD", "turnover", "unwound"]
    table = Table(
        "#",
        *(name.replace(".", "\n") for name in sweep.short_names(spec.keys)),
        *headers,
        title=f"backtest sweep: {len(rows)} points of {file}",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
        caption=f"{where}, {elapsed:.1f} s; money in quote, rounded (sweep.csv has it "
        f"exactly); written to {csv_path}",
    )
    for column in table.columns[1:]:
        column.justify = "right"
    for row in rows:
        cells = [str(row["point"])]
        cells += [sweep.text(row[key]) for key in spec.keys]
        cells += [
            f"{value:,}" if isinstance(value, int) else f"{Decimal(value):.2f}"
            for value in (row[name] for name in sweep.FIGURES)
        ]
        table.add_row(*cells)
    console = Console()
    if not console.is_terminal:  # a pipe or a file: no reason to squeeze the columns
        console = Console(width=max(console.width, 160))
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("backtest")(backtest)
