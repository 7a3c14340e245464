"""``arbot record``: stream every configured book into a Parquet dataset."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from arbot.cli._common import ConfigOption, JsonOption

SHUTDOWN_TIMEOUT_S = 5.0

if TYPE_CHECKING:
    from rich.table import Table

    from arbot.config import Settings
    from arbot.feeds.book_feed import BookFeed


def record(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="Dataset folder (created if missing).")],
    config: ConfigOption = None,
    duration: Annotated[
        float | None,
        typer.Option("--duration", help="Stop after this many seconds (default: until Ctrl-C)."),
    ] = None,
    depth: Annotated[int, typer.Option("--depth", help="Levels per side to record.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """Record every book update of every configured venue and symbol (Ctrl-C stops cleanly).

    A live table shows updates, rates, gaps, reconnects and stalls per feed on a
    terminal; feed events are logged. At the end a summary table (or, with --json, a
    list of {feed, venue, symbol, updates, gaps, reconnects, stalls}) is printed.

    Exit codes: 0 recorded (Ctrl-C and SIGTERM included); 2 bad configuration or
    arguments.
    """
    import asyncio

    from arbot.cli._common import load_settings, setup_logging
    from arbot.errors import ArbotError

    if duration is not None and duration <= 0:
        raise ArbotError(f"--duration {duration}: expected a positive number of seconds")
    if not 1 <= depth <= 1000:
        raise ArbotError(f"--depth {depth}: expected 1..1000 levels")
    settings = load_settings(config)
    setup_logging(ctx, settings)
    if not settings.venues:
        raise ArbotError("no [venues] configured; add at least one venue to record")
    asyncio.run(_record(settings, out, duration, depth, as_json=as_json))


async def _record(
    settings: Settings, out: Path, duration: float | None, depth: int, *, as_json: bool
) -> None:
    import asyncio
    import contextlib
    import signal
    import sys

    from arbot.feeds.book_feed import BookFeed, log_feed_events
    from arbot.feeds.dataset import DatasetWriter
    from arbot.venues.ccxt_venue import CcxtVenue

    venues = [CcxtVenue(name, cfg, None) for name, cfg in settings.venues.items()]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    with DatasetWriter(out, depth=depth) as writer:
        feeds = [
            BookFeed(
                venue,
                symbol,
                writer.write,
                depth=depth,
                max_book_age_ms=settings.risk.max_book_age_ms,
                stall_after_s=venue.config.stall_after_s,
                on_event=log_feed_events(f"{venue.name}:{symbol}"),
            )
            for venue in venues
            for symbol in venue.config.symbols
        ]
        tasks = [asyncio.create_task(feed.run(), name=f"feed-{feed.name}") for feed in feeds]
        live = _Progress(feeds) if sys.stdout.isatty() and not as_json else None
        try:
            deadline = None if duration is None else loop.time() + duration
            while not stop.is_set():
                remaining = None if deadline is None else deadline - loop.time()
                if remaining is not None and remaining <= 0:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=min(1.0, remaining or 1.0))
                writer.flush_due()
                if live is not None:
                    live.refresh()
                failed = [t for t in tasks if t.done() and not t.cancelled() and t.exception()]
                if failed:
                    raise failed[0].exception()  # type: ignore[misc]
        finally:
            for task in tasks:
                task.cancel()
            # Staged, bounded teardown: feeds, then connections; the dataset closes last
            # (leaving the ``with``) so every recorded row is published.
            _, stuck = await asyncio.wait(tasks, timeout=SHUTDOWN_TIMEOUT_S)
            if live is not None:
                live.stop()
            for venue in venues:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(venue.close(), SHUTDOWN_TIMEOUT_S)
            if stuck:
                print(
                    f"arbot: warning: {len(stuck)} feed(s) did not stop within "
                    f"{SHUTDOWN_TIMEOUT_S:.0f} s",
                    file=sys.stderr,
                )
    if as_json:
        from arbot.cli._common import print_json

        print_json(
            [
                {
                    "feed": feed.name,
                    "venue": feed.venue.name,
                    "symbol": feed.symbol,
                    "updates": feed.stats.updates,
                    "gaps": feed.stats.gaps,
                    "reconnects": feed.stats.reconnects,
                    "stalls": feed.stats.stalls,
                }
                for feed in feeds
            ]
        )
    else:
        _summary(feeds, out)


class _Progress:
    """A live table of the feeds on a terminal."""

    def __init__(self, feeds: list[BookFeed]) -> None:
        from rich.live import Live

        self.feeds = feeds
        self.live = Live(self._table(), refresh_per_second=2, transient=True)
        self.live.start()

    def _table(self) -> Table:
        return _feed_table(self.feeds, with_age=True)

    def refresh(self) -> None:
        self.live.update(self._table())

    def stop(self) -> None:
        self.live.stop()


def _feed_table(feeds: list[BookFeed], *, with_age: bool, title: str | None = None) -> Table:
    """Per-feed counters: the live display (with book age) and the final summary."""
    import time

    from rich.table import Table

    now = time.time_ns()
    columns = ["feed", "updates", "updates/s", "gaps", "reconnects", "stalls"]
    table = Table(*columns, *(["age ms"] if with_age else []), title=title)
    for feed in feeds:
        s = feed.stats
        row = [
            feed.name,
            f"{s.updates:,}",
            f"{s.updates_per_s(now):.1f}",
            str(s.gaps),
            str(s.reconnects),
            str(s.stalls),
        ]
        if with_age:
            age = s.age_ms(now)
            row.append("-" if age is None else f"{age:.0f}")
        table.add_row(*row)
    return table


def _summary(feeds: list[BookFeed], out: Path) -> None:
    import sys

    from rich.console import Console

    table = _feed_table(feeds, with_age=False, title=f"recorded into {out}")
    Console(width=None if sys.stdout.isatty() else 120).print(table)


def register(app: typer.Typer) -> None:
    app.command("record")(record)
