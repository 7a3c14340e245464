"""Small helpers shared by command modules: options, settings loading, output."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from arbot.config import Settings

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "-c",
        "--config",
        help="Settings file (TOML). Default: config/arbot.toml. ARBOT_* variables override it.",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


@dataclass
class CliState:
    """Options given before the command (``arbot --log-json run``)."""

    log_json: bool = False
    log_level: str | None = None


def load_settings(path: Path | None) -> Settings:
    from arbot.config import load_settings as _load

    return _load(path)


def setup_logging(
    ctx: typer.Context, settings: Settings, quiet: Mapping[str, str] | None = None
) -> None:
    """``quiet``: higher minimum levels per module, unless ``--log-level`` was given."""
    from arbot.logs import configure_logging

    state = ctx.find_object(CliState) or CliState()
    configure_logging(
        level=(state.log_level or settings.log.level).upper(),
        json_lines=state.log_json or settings.log.json_lines,
        file=settings.log.file,
        quiet=None if state.log_level else quiet,
    )


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=False, default=str))
