"""Rich renderings of a daemon :class:`~arbot.ops.status.Status`: the live progress of
``arbot run`` / ``arbot demo`` and the tables of ``arbot status``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Group

    from arbot.engine.daemon import RunSummary
    from arbot.ops.status import Status


def status_tables(status: Status) -> Group:
    from rich.console import Group
    from rich.table import Table

    head = Table.grid(padding=(0, 2))
    halted = status["kill_switch"].get("tripped")
    head.add_row(
        f"run {status['run_id']}",
        f"{status['mode']} mode",
        f"strategy {status['strategy']}",
        f"up {status['uptime_s']:.0f} s",
        "[red]KILL SWITCH TRIPPED[/red]" if halted else "[green]taking opportunities[/green]",
        "keys: " + ", ".join(f"{v} {k}" for v, k in sorted(status["keys"].items())),
    )
    books = Table(
        "book", "updates", "upd/s", "age ms", "gaps", "reconnects", "stale", title="books"
    )
    for feed in status["feeds"]:
        age = feed["age_ms"]
        books.add_row(
            f"{feed['venue']} {feed['symbol']}",
            f"{feed['updates']:,}",
            f"{feed['updates_per_s']:.1f}",
            "-" if age is None else f"{age:.0f}",
            str(feed["gaps"]),
            str(feed["reconnects"]),
            "[red]yes[/red]" if feed["stale"] else "no",
        )
    opportunities = status["opportunities"]
    trades = Table("", "", title="trading", show_header=False)
    trades.add_row("opportunities seen", f"{opportunities['seen']:,}")
    trades.add_row("taken", f"{opportunities['taken']:,}")
    for reason, count in sorted(opportunities.get("rejected", {}).items()):
        trades.add_row(f"rejected: {reason}", f"{count:,}")
    for outcome, count in sorted(opportunities.get("outcomes", {}).items()):
        trades.add_row(f"outcome: {outcome}", f"{count:,}")
    trades.add_row("fills", f"{status['fills']:,}")
    for quote, pnl in sorted(status["pnl_quote"].items()):
        trades.add_row(f"realised PnL ({quote})", pnl)
    return Group(head, books, trades)


def summary_table(summary: RunSummary, extra: dict[str, Any] | None = None) -> Any:
    from rich.table import Table

    table = Table(
        "", "", title=f"run {summary.run_id} ({summary.mode}): {summary.status}", show_header=False
    )
    table.add_row("duration", f"{summary.duration_s:.0f} s")
    table.add_row("book updates", f"{summary.updates:,}")
    table.add_row("opportunities seen", f"{summary.seen:,}")
    table.add_row("opportunities taken", f"{summary.taken:,}")
    for reason, count in sorted(summary.rejected.items()):
        table.add_row(f"rejected: {reason}", f"{count:,}")
    for outcome, count in sorted(summary.outcomes.items()):
        table.add_row(f"outcome: {outcome}", f"{count:,}")
    table.add_row("fills", f"{summary.fills:,}")
    for quote, pnl in sorted(summary.pnl.items()):
        table.add_row(f"realised PnL ({quote})", pnl)
    table.add_row("open orders cancelled at stop", str(summary.open_orders_cancelled))
    if summary.reason:
        table.add_row("stopped because", summary.reason)
    table.add_row("database", summary.database)
    for key, value in (extra or {}).items():
        table.add_row(key, str(value))
    return table
