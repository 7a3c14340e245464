"""``arbot run`` (the daemon) and ``arbot reload`` (SIGHUP to it)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from arbot.cli._common import ConfigOption, JsonOption

if TYPE_CHECKING:
    from arbot.config import Settings
    from arbot.engine.daemon import Daemon, RunSummary


def run(
    ctx: typer.Context,
    config: ConfigOption = None,
    mode: Annotated[
        str | None,
        typer.Option("--mode", help="paper (simulated fills, no keys) or live; default: [mode]."),
    ] = None,
    yes: Annotated[
        bool, typer.Option("--yes", help="Live mode: do not ask for confirmation.")
    ] = False,
    duration: Annotated[
        float | None,
        typer.Option("--duration", help="Stop after this many seconds (default: until stopped)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Run the trading daemon (paper or live).

    Loads settings and (live) the keystore, proves every key trade-only, reconciles the
    journal, streams the books the strategy needs and trades until SIGTERM or Ctrl-C,
    then cancels open orders, settles executions under way and exits. SIGHUP (or
    arbot reload) re-reads strategy params and risk limits.

    Exit codes: 0 stopped cleanly; 1 stopped by a halt (a key gained funds-moving
    rights); 2 refused to start (configuration, keystore, an unproven key).
    """
    import asyncio
    import sys

    from arbot.cli._common import setup_logging
    from arbot.errors import ArbotError

    settings = _settings(config, mode)
    setup_logging(ctx, settings)
    if duration is not None and duration <= 0:
        raise ArbotError(f"--duration {duration}: expected a positive number of seconds")
    if settings.mode == "live" and not yes:
        _confirm_live(settings)
    from arbot.engine.daemon import pid_file

    with pid_file(settings.ops.pid_file):
        summary = asyncio.run(
            _run(settings, config, duration, live_display=sys.stdout.isatty() and not as_json)
        )
    _print_summary(summary, as_json)
    if summary.status == "halted":
        raise typer.Exit(1)


def _settings(config: Path | None, mode: str | None) -> Settings:
    from arbot.cli._common import load_settings
    from arbot.errors import ArbotError

    base = load_settings(config)
    chosen = mode or base.mode
    if chosen not in ("paper", "live"):
        raise ArbotError(f"--mode {chosen!r}: expected paper or live")
    if chosen == "paper":
        return base.model_copy(update={"mode": "paper"})
    from arbot.cli.keys import _open_keystore
    from arbot.config import load_settings as load_with_credentials

    keystore = _open_keystore(base)
    settings = load_with_credentials(config, credentials=dict(keystore.items()))
    return settings.model_copy(update={"mode": "live"})


def _confirm_live(settings: Settings) -> None:
    import sys

    from arbot.errors import ArbotError

    venues = ", ".join(settings.venues)
    if not sys.stdin.isatty():
        raise ArbotError("live mode asks for confirmation on a terminal; pass --yes to skip it")
    typer.echo(f"LIVE trading with real funds on: {venues}")
    answer = typer.prompt("Type 'live' to start", default="", show_default=False)
    if answer.strip() != "live":
        raise ArbotError("live trading not confirmed; nothing was started")


async def _run(
    settings: Settings, config: Path | None, duration: float | None, *, live_display: bool
) -> RunSummary:
    import asyncio

    from arbot.engine.daemon import Daemon, install_signal_handlers

    display = _LiveDisplay() if live_display else None
    daemon = Daemon(
        settings,
        mode=settings.mode,
        config_path=config,
        progress=display.update if display else None,
    )
    stop = asyncio.Event()
    install_signal_handlers(daemon, stop)
    timer = None
    if duration is not None:
        timer = asyncio.get_running_loop().call_later(duration, stop.set)
    try:
        await daemon.start()
        return await daemon.run(stop)
    finally:
        if timer is not None:
            timer.cancel()
        if display is not None:
            display.stop()
        await _close_quietly(daemon)


async def _close_quietly(daemon: Daemon) -> None:
    """A start that failed half-way still closes what it opened."""
    import contextlib

    if daemon.engine is None:
        for venue in daemon.venues.values():
            with contextlib.suppress(Exception):  # best effort on a failed start
                await venue.close()
        if daemon.store is not None:
            daemon.store.close()


class _LiveDisplay:
    def __init__(self) -> None:
        from rich.live import Live

        self.live = Live(refresh_per_second=2, transient=True)
        self.live.start()

    def update(self, status: Any) -> None:
        from arbot.cli._live import status_tables

        self.live.update(status_tables(status))

    def stop(self) -> None:
        self.live.stop()


def _print_summary(summary: RunSummary, as_json: bool, extra: dict[str, Any] | None = None) -> None:
    if as_json:
        from arbot.cli._common import print_json

        print_json({**summary.to_dict(), **(extra or {})})
        return
    from rich.console import Console

    from arbot.cli._live import summary_table

    Console().print(summary_table(summary, extra))


def reload(config: ConfigOption = None) -> None:
    """Re-read strategy params and risk limits in the running daemon.

    Sends SIGHUP to the pid in [ops] pid_file (default arbot.pid). Exit codes: 0 sent;
    2 no running daemon found.
    """
    import os
    import signal

    from arbot.cli._common import load_settings
    from arbot.errors import ArbotError

    settings = load_settings(config)
    path = settings.ops.pid_file
    try:
        pid = int(path.read_text().strip())
        os.kill(pid, signal.SIGHUP)
    except (OSError, ValueError):
        raise ArbotError(
            f"{path}: no running arbot run found (start it, or point [ops] pid_file at "
            "its pid file)"
        ) from None
    typer.echo(f"sent SIGHUP to arbot run (pid {pid}): strategy params and risk limits reload")


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("reload")(reload)
