"""``arbot status``: ask the running daemon's ops endpoint and print its state as tables."""

from __future__ import annotations

from typing import Annotated

import typer

from arbot.cli._common import ConfigOption, JsonOption


def status(
    config: ConfigOption = None,
    port: Annotated[
        int | None, typer.Option("--port", help="The daemon's ops port (default: [ops] port).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Show the running daemon's feeds, risk state and PnL.

    Reads http://127.0.0.1:PORT/status and /healthz of a daemon started with [ops] port
    set. Exit codes: 0 healthy; 1 the daemon answers but is unhealthy (stale feed,
    unproven key, store not writable); 2 no daemon answering.
    """
    import json
    import urllib.error
    import urllib.request

    from arbot.cli._common import load_settings
    from arbot.errors import ArbotError
    from arbot.ops.status import health

    chosen = port if port is not None else load_settings(config).ops.port
    if not chosen:
        raise ArbotError("no ops port: set [ops] port in the config (or pass --port)")
    url = f"http://127.0.0.1:{chosen}/status"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            data = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ArbotError(
            f"no arbot daemon answering on {url} ({reason}); is arbot run running with "
            "[ops] port set?"
        ) from None
    healthy, problems = health(data)
    if as_json:
        from arbot.cli._common import print_json

        print_json({**data, "healthy": healthy, "problems": problems})
    else:
        from rich.console import Console

        from arbot.cli._live import status_tables

        console = Console()
        console.print(status_tables(data))
        console.print("healthy" if healthy else "UNHEALTHY: " + "; ".join(problems))
    if not healthy:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("status")(status)
