"""``arbot demo``: the whole product on one machine in about a minute, nothing to set up.

The simulator runs in this process (Binance- and OKX-protocol venues on 127.0.0.1,
makers whose quotes dislocate now and then), a throwaway keystore gets the simulator's
trade-only keys and the daemon proves them, then the daemon trades in paper mode with
the cross_exchange strategy; at the end a summary, the SQLite database and an HTML
report. The folder keeps the config it used, so ``arbot run -c DIR/arbot.toml`` (with
``arbot sim`` on the same port) runs the same set-up again.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from arbot.cli._common import JsonOption

if TYPE_CHECKING:
    from arbot.sim.server import SimServer

SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
BALANCES = {"USDT": 20000, "BTC": 0.3, "ETH": 5, "SOL": 100}


def demo(
    ctx: typer.Context,
    duration: Annotated[
        float,
        typer.Option("--duration", help="Seconds of trading (the whole demo takes ~5 s more)."),
    ] = 45.0,
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir", help="Folder for the database, report and config (default: a new temp folder)."
        ),
    ] = None,
    seed: Annotated[
        int, typer.Option("--seed", help="Simulator seed (same seed, same markets).")
    ] = 7,
    as_json: JsonOption = False,
) -> None:
    """Run the self-contained demo against the local simulator.

    Starts the simulator in-process (two venues, two protocols, three symbols), proves
    throwaway trade-only keys, runs the daemon in paper mode with cross_exchange and
    live progress, then prints a summary with the database and HTML report paths. No
    network beyond 127.0.0.1, no prompts.

    Exit codes: 0 done; 2 bad option.
    """
    import asyncio
    import sys
    import tempfile

    from arbot.errors import ArbotError
    from arbot.logs import configure_logging

    if not 5 <= duration <= 3600:
        raise ArbotError(f"--duration {duration}: expected 5..3600 seconds")
    folder = directory or Path(tempfile.mkdtemp(prefix="arbot-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    interactive = sys.stdout.isatty() and not as_json
    # A terminal shows the live tables; warnings still go to stderr.
    configure_logging(level="WARNING" if interactive else "INFO", json_lines=False, file=None)
    result = asyncio.run(_demo(folder, duration, seed, interactive=interactive))
    from arbot.cli.run import _print_summary

    summary, extra = result
    _print_summary(summary, as_json, extra)


async def _demo(
    folder: Path, duration: float, seed: int, *, interactive: bool
) -> tuple[Any, dict[str, Any]]:
    import asyncio

    from arbot.config import load_settings
    from arbot.engine.daemon import Daemon, install_signal_handlers
    from arbot.sim.config import load_sim_config
    from arbot.sim.server import SimServer

    sim_config = _sim_config(load_sim_config(), seed)
    server = SimServer(sim_config)
    await server.start(0)
    try:
        config_path = folder / "arbot.toml"
        keystore_path = folder / "keys.enc"
        proofs = await _throwaway_keys(server, keystore_path)
        config_path.write_text(_config_text(server, folder), encoding="utf-8")
        settings = load_settings(config_path)
        from arbot.cli.run import _LiveDisplay

        display = _LiveDisplay() if interactive else None
        daemon = Daemon(
            settings,
            mode="paper",
            config_path=config_path,
            progress=display.update if display else None,
        )
        stop = asyncio.Event()
        install_signal_handlers(daemon, stop)
        timer = asyncio.get_running_loop().call_later(duration, stop.set)
        try:
            await daemon.start()
            summary = await daemon.run(stop)
        finally:
            timer.cancel()
            if display is not None:
                display.stop()
    finally:
        await server.close()
    report = _write_report(settings.database_url, folder / "report.html", summary.run_id)
    extra = {
        "keys proven": ", ".join(f"{v}: {p}" for v, p in sorted(proofs.items())),
        "HTML report": str(report),
        "config used": str(config_path),
    }
    return summary, extra


def _sim_config(config: Any, seed: int) -> Any:
    """The default simulator, livelier: more updates and frequent cross-venue dislocations."""
    venues = {}
    for name, venue in config.venues.items():
        makers = venue.makers.model_copy(
            update={"dislocation_every_s": 4.0, "dislocation_bps": 35.0}
        )
        venues[name] = venue.model_copy(update={"updates_per_second": 40, "makers": makers})
    return config.model_copy(update={"venues": venues, "seed": seed, "port": 0})


async def _throwaway_keys(server: SimServer, path: Path) -> dict[str, str]:
    """A keystore holding the simulator's trade-only keys, each proven by its exchange."""
    from pydantic import SecretStr

    from arbot.keys.guard import PermissionGuard
    from arbot.keys.keystore import Keystore
    from arbot.redact import register_secret
    from arbot.testing.sim import sim_venue_config
    from arbot.venues.ccxt_venue import CcxtVenue

    passphrase = secrets.token_urlsafe(24)
    register_secret(passphrase)
    keystore = Keystore.create(path, SecretStr(passphrase), scrypt_n=2**14)
    guard = PermissionGuard(300)
    proofs: dict[str, str] = {}
    venues = []
    for name in ("binance", "okx"):
        config = sim_venue_config(server, name, symbols=SYMBOLS)
        assert config.credentials is not None
        keystore.add(name, config.credentials)
        venues.append(CcxtVenue(name, config, guard))
    keystore.save()
    try:
        for venue in venues:
            await guard.require(venue.name)
            proof = guard.last_proof(venue.name)
            proofs[venue.name] = proof.verdict.value if proof else "?"
    finally:
        for venue in venues:
            await venue.close()
    return proofs


def _config_text(server: SimServer, folder: Path) -> str:
    balances = ", ".join(f"{asset} = {amount}" for asset, amount in BALANCES.items())
    symbols = ", ".join(f'"{s}"' for s in SYMBOLS)
    venues = "".join(
        f"""
[venues.{name}]
exchange = "{server.venues[name].protocol}"
symbols = [{symbols}]
endpoint = "{server.venue_url(name)}"
taker_fee = 0.001
balances = {{ {balances} }}
"""
        for name in ("binance", "okx")
    )
    return f"""# Written by arbot demo: paper trading against the simulator it started.
mode = "paper"
database_url = "sqlite:///{folder / "arbot.db"}"
keystore = "{folder / "keys.enc"}"
{venues}
[strategy]
name = "cross_exchange"

[strategy.params]
min_edge_bps = 2
max_notional_quote = 2000
max_inventory_skew = 0.85

[risk]
max_book_age_ms = 2000
max_order_notional = 5000
max_orders_per_second = 4

[ops]
pid_file = "{folder / "arbot.pid"}"
"""


def _write_report(database_url: str, path: Path, run_id: int) -> Path:
    from arbot.fileio import atomic_write_text
    from arbot.report.html import render
    from arbot.report.trades import build_report
    from arbot.store import Store

    with Store(database_url) as store:
        report = build_report(store, run_id=run_id)
    atomic_write_text(path, render(report, title=f"arbot demo: run {run_id}"))
    return path


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
