"""``arbot init``: start a new arbot project folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

STRATEGIES_README = """\
# Strategy plugins

Put your own strategy plugins here, one `.py` file each; arbot discovers them
by the `[strategy] path` setting (default: this folder).
"""


def init(
    directory: Annotated[
        Path, typer.Argument(help="Project folder to create or fill.", show_default=False)
    ] = Path("."),
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite an existing config/arbot.toml.")
    ] = False,
) -> None:
    """Write a starter config/arbot.toml and a strategies/ folder."""
    from arbot.errors import ArbotError
    from arbot.fileio import atomic_write_text
    from arbot.templates import starter_config

    if directory.exists() and not directory.is_dir():
        raise ArbotError(f"{directory}: exists and is not a folder; choose another name")
    config_file = directory / "config" / "arbot.toml"
    if config_file.exists() and not force:
        raise ArbotError(f"{config_file}: already exists; pass --force to overwrite it")
    try:
        config_file.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(config_file, starter_config())
        strategies = directory / "strategies"
        strategies.mkdir(exist_ok=True)
        readme = strategies / "README.md"
        if not readme.exists():
            atomic_write_text(readme, STRATEGIES_README)
    except OSError as exc:
        raise ArbotError(f"{exc.filename or directory}: {exc.strerror}; check the path") from None
    typer.echo(f"wrote {config_file}")
    typer.echo(f"next: arbot config check -c {config_file}")


def register(app: typer.Typer) -> None:
    app.command("init")(init)
