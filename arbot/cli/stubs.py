"""Commands whose implementation lands in a later release; they exist so --help is complete."""

from __future__ import annotations

from collections.abc import Callable

import typer

PLANNED: dict[str, str] = {
    "backtest": "Replay recorded books through strategy, risk and executor.",
}


def _make_stub(name: str) -> Callable[[typer.Context], None]:
    def stub(ctx: typer.Context) -> None:
        from arbot.errors import NotAvailableError

        raise NotAvailableError(f"'arbot {name}' is not available in this release yet")

    stub.__doc__ = f"{PLANNED[name]} (not available yet)"
    return stub


def register(app: typer.Typer) -> None:
    for name in PLANNED:
        app.command(
            name,
            context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
        )(_make_stub(name))
