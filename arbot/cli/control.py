"""``arbot halt`` and ``arbot resume``: throw the kill switch from any shell.

Both write a row to the ``kill_switch`` table of the configured database; every daemon
on that database reads it within about half a second, and a daemon started later
starts in that state. Neither command needs the daemon to be running.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from arbot.cli._common import ConfigOption, JsonOption, print_json

if TYPE_CHECKING:
    from arbot.engine.kill_switch import KillSwitchState


def halt(
    config: ConfigOption = None,
    reason: Annotated[
        str,
        typer.Option("--reason", help="Why, for the record."),
    ] = "operator",
    as_json: JsonOption = False,
) -> None:
    """Trip the kill switch: stop taking opportunities.

    Daemons on the configured database approve no new opportunity
    from within about half a second (orders already sent run their
    course) and stay halted, across restarts, until arbot resume.

    Exit codes: 0 done (the new state is printed), 2 bad config or
    database.
    """
    from arbot.errors import ArbotError

    if not reason.strip():
        raise ArbotError("--reason: give a few words, or leave the option out")
    _throw(config, as_json, trip=reason.strip())


def resume(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Reset the kill switch: take opportunities again.

    Daemons on the configured database resume within about half a
    second, with a fresh daily-loss budget and their count of
    consecutive failures at zero.

    Exit codes: 0 done (the new state is printed), 2 bad config or
    database.
    """
    _throw(config, as_json, trip=None)


def _throw(config: Path | None, as_json: bool, *, trip: str | None) -> None:
    from arbot.engine.kill_switch import KillSwitch
    from arbot.store import Store

    with Store(_database_url(config)) as store:
        switch = KillSwitch(store)
        before = switch.state
        after = switch.trip(trip, "operator") if trip is not None else switch.reset("operator")
        where = store.display_url
    if as_json:
        print_json(
            {"database": where, **after.to_dict(), "changed": before.tripped != after.tripped}
        )
        return
    typer.echo(_describe(before, after))
    typer.echo(f"database: {where}")


def _describe(before: KillSwitchState, after: KillSwitchState) -> str:
    if after.tripped:
        was = " (it was already tripped)" if before.tripped else ""
        return (
            f"kill switch TRIPPED{was}: {after.reason}; daemons stop taking opportunities; "
            "undo with: arbot resume"
        )
    was = " (it was not tripped)" if not before.tripped else ""
    return f"kill switch reset{was}: daemons take opportunities again"


def _database_url(config: Path | None) -> str:
    from arbot.config import DEFAULT_CONFIG_PATH, Settings, load_settings

    if config is None and not DEFAULT_CONFIG_PATH.exists():
        return Settings().database_url  # defaults plus ARBOT_* environment
    return load_settings(config).database_url


def register(app: typer.Typer) -> None:
    app.command("halt")(halt)
    app.command("resume")(resume)
