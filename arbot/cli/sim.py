"""``arbot sim``: run the local exchange simulator until interrupted."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from arbot.cli._common import JsonOption

if TYPE_CHECKING:
    import asyncio

    from arbot.sim.server import SimServer


def sim(
    config: Annotated[
        Path | None,
        typer.Option(
            "-c",
            "--config",
            help="Simulator settings (TOML). Default: built-in.",
            show_default=False,
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            "--port",
            help="Port on 127.0.0.1; 0 picks a free one. Default: 8765.",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Seed of every random process.", show_default=False)
    ] = None,
    replay: Annotated[
        Path | None,
        typer.Option(
            "--replay",
            help="Serve recorded books from this file or folder instead of simulated makers.",
            show_default=False,
        ),
    ] = None,
    speed: Annotated[
        float,
        typer.Option(
            "--speed",
            help="Replay speed: 1 = real time, 10 = ten times faster, 0 = as fast as possible.",
        ),
    ] = 1.0,
    as_json: JsonOption = False,
) -> None:
    """Serve simulated Binance- and OKX-protocol venues on 127.0.0.1 until Ctrl-C.

    Prints the venue URLs and the simulator's own API keys (they are keys of this
    simulator, not anyone's secrets). The port is listening before the first line.
    """
    import asyncio

    from arbot.errors import ArbotError
    from arbot.sim.config import load_sim_config

    if port is not None and not 0 <= port <= 65535:
        raise ArbotError(f"--port {port}: expected 0..65535 (0 picks a free port)")
    if speed < 0:
        raise ArbotError(f"--speed {speed}: expected 0 (as fast as possible) or more")
    source = None
    if replay is not None:
        from arbot.sim.replay import open_replay

        source = open_replay(replay)
        settings = source.sim_config(
            seed=7 if seed is None else seed, port=8765 if port is None else port
        )
    else:
        settings = load_sim_config(config, seed=seed, port=port)
    asyncio.run(_serve(settings, source, speed, as_json))


async def _serve(settings: Any, source: Any, speed: float, as_json: bool) -> None:
    import asyncio
    import contextlib
    import errno
    import signal

    from arbot.errors import ArbotError
    from arbot.sim.server import SimServer

    server = SimServer(settings, makers=source is None)
    try:
        await server.start()
    except OSError as exc:
        await server.close()
        if exc.errno == errno.EADDRINUSE:
            raise ArbotError(
                f"port {settings.port} on 127.0.0.1 is in use; pass --port 0 for a free one "
                "or stop the other process"
            ) from None
        raise ArbotError(f"cannot listen on 127.0.0.1:{settings.port}: {exc.strerror}") from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    replay_task = None
    try:
        _announce(server, as_json, replaying=source is not None)
        if source is not None:
            replay_task = asyncio.create_task(source.run(server, speed=speed))
            replay_task.add_done_callback(lambda task: _stop_on_failure(task, stop))
        await stop.wait()
        if replay_task is not None and replay_task.done() and not replay_task.cancelled():
            failure = replay_task.exception()
            if failure is not None:
                raise failure
    finally:
        if replay_task is not None:
            replay_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await replay_task
        await server.close()


def _stop_on_failure(task: asyncio.Task[Any], stop: asyncio.Event) -> None:
    """A replay that fails stops the simulator instead of going unnoticed until Ctrl-C."""
    if not task.cancelled() and task.exception() is not None:
        stop.set()


def _announce(server: SimServer, as_json: bool, *, replaying: bool) -> None:
    import json

    venues: list[dict[str, Any]] = [
        {
            "venue": name,
            "protocol": venue.protocol,
            "endpoint": server.venue_url(name),
            "urls": server.urls(name),
            "symbols": list(venue.markets),
        }
        for name, venue in server.venues.items()
    ]
    if as_json:
        print(
            json.dumps(
                {
                    "port": server.port,
                    "base_url": server.base_url,
                    "control": f"{server.base_url}/_sim/",
                    "venues": venues,
                    "keys": server.api_keys(),
                }
            ),
            flush=True,
        )
        return
    from rich.console import Console
    from rich.table import Table

    print(
        f"arbot sim: listening on {server.base_url} (control API {server.base_url}/_sim/)"
        + (" — replaying recorded books" if replaying else ""),
        flush=True,
    )
    console = Console(width=None if sys.stdout.isatty() else 200)
    table = Table("venue", "protocol", "endpoint (config: endpoint = ...)", "symbols")
    for entry in venues:
        table.add_row(
            entry["venue"], entry["protocol"], entry["endpoint"], ", ".join(entry["symbols"])
        )
    console.print(table)
    keys = Table(
        "venue",
        "key",
        "permissions",
        "apiKey",
        "secret",
        "password",
        title="simulator keys (not secrets of anyone)",
    )
    for column in keys.columns[3:]:
        column.overflow = "fold"
    for key in server.api_keys():
        keys.add_row(
            key["venue"],
            key["name"],
            ",".join(key["permissions"]),
            key["apiKey"],
            key["secret"],
            key["password"] or "",
        )
    console.print(keys)
    print("Ctrl-C stops the simulator.", flush=True)
    sys.stdout.flush()


def register(app: typer.Typer) -> None:
    app.command("sim")(sim)
