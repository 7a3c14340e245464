"""``arbot keys``: the encrypted keystore and key permission checks.

The passphrase comes from ``ARBOT_PASSPHRASE_FILE``, ``ARBOT_PASSPHRASE`` or a prompt —
never from an argument. No command prints a secret.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from arbot.cli._common import ConfigOption, JsonOption, print_json

if TYPE_CHECKING:
    from arbot.config import Settings
    from arbot.keys.credentials import Credentials
    from arbot.keys.keystore import Keystore
    from arbot.keys.model import KeyPermissions

app = typer.Typer(
    help="Manage the encrypted keystore and check key permissions.", no_args_is_help=True
)

VenueArgument = Annotated[str, typer.Argument(help="Venue name, as in [venues.NAME].")]

# How to make a trade-only key, per exchange: shown when a key can move funds.
TRADE_ONLY_HOWTO = {
    "binance": "API Management → Edit restrictions: keep 'Enable Spot & Margin Trading', "
    "untick 'Enable Withdrawals' and 'Permits Universal Transfer'",
    "okx": "API → Create API key with permissions Read and Trade only (not Withdraw)",
    "bybit": "API Management → System-generated key, Read-Write for Spot trade only; no "
    "Wallet (withdraw/transfer) permission",
    "coinbase": "Developer Platform → API key with View and Trade only (not Transfer)",
    "kraken": "Settings → API → permissions Query and Create & Modify Orders only; no "
    "Withdraw Funds",
    "kucoin": "API Management → permissions General and Spot Trading only; no Withdrawal "
    "or Transfer",
    "bitget": "API Management → Read-only + Spot trade; no Withdraw or Transfer",
    "htx": "API Management → Read-only and Trade permissions; no Withdraw",
    "bitfinex": "API Keys → Orders write, Wallets read; Withdraw and transfer off",
}


def _settings(config: Path | None) -> Settings:
    """Settings from ``-c`` (required to exist) or the default file, else built-in defaults."""
    from arbot.config import DEFAULT_CONFIG_PATH, Settings, load_settings

    if config is None and not DEFAULT_CONFIG_PATH.exists():
        return Settings()
    return load_settings(config)


def _open_keystore(settings: Settings, *, create: bool = False) -> Keystore:
    from arbot.keys.keystore import Keystore, KeystoreError
    from arbot.keys.passphrase import read_passphrase

    path = settings.keystore
    if path.exists():
        return Keystore.open(path, read_passphrase())
    if not create:
        raise KeystoreError(f"{path}: no keystore here; create one with: arbot keys add VENUE")
    return Keystore.create(path, read_passphrase(new_keystore=True))


def _require_configured(settings: Settings, venue: str, config: Path | None) -> None:
    from arbot.config import DEFAULT_CONFIG_PATH
    from arbot.errors import ArbotError

    if venue not in settings.venues:
        source = config or DEFAULT_CONFIG_PATH
        known = ", ".join(settings.venues) or "none"
        raise ArbotError(
            f"venue {venue!r} is not configured in {source} (configured: {known}); add a "
            f"[venues.{venue}] table first"
        )


@app.command("add")
def add(
    venue: VenueArgument,
    config: ConfigOption = None,
    from_stdin: Annotated[
        bool,
        typer.Option(
            "--stdin",
            help='Read {"apiKey": ..., "secret": ..., "password": ..., "uid": ...} from stdin.',
        ),
    ] = False,
    replace: Annotated[bool, typer.Option("--replace", help="Rotate an existing key.")] = False,
) -> None:
    """Store a venue's API key, encrypted (asks with no echo, or --stdin for scripts)."""
    settings = _settings(config)
    _require_configured(settings, venue, config)
    store = _open_keystore(settings, create=True)
    existing = store.get(venue)
    if existing is not None and not replace:
        from arbot.keys.keystore import KeystoreError

        raise KeystoreError(
            f"{venue} already has a key ({existing.key_id}); rotate it with: "
            f"arbot keys add {venue} --replace"
        )
    credentials = _read_credentials(venue, settings, from_stdin)
    store.add(venue, credentials, replace_existing=replace)
    store.save()
    typer.echo(f"stored {venue} key {credentials.key_id} in {store.path}")
    typer.echo(f"next: arbot keys check {venue}")


def _read_credentials(venue: str, settings: Settings, from_stdin: bool) -> Credentials:
    import json
    import sys

    from arbot.errors import ArbotError
    from arbot.keys.credentials import Credentials

    if from_stdin:
        text = sys.stdin.read()
        try:
            document = json.loads(text)
        except ValueError:
            raise ArbotError(
                'stdin: not JSON; expected {"apiKey": "...", "secret": "..."}'
            ) from None
        return Credentials.from_json(document, "stdin")
    if not sys.stdin.isatty():
        raise ArbotError(
            "no terminal to ask on; pass the key as JSON on standard input with --stdin"
        )
    import getpass

    exchange = settings.venues[venue].exchange
    needs_password = exchange in {"okx", "kucoin", "bitget", "coinbaseexchange"}
    data: dict[str, Any] = {
        "apiKey": getpass.getpass(f"{venue} API key: "),
        "secret": getpass.getpass(f"{venue} API secret: "),
    }
    if needs_password:
        data["password"] = getpass.getpass(f"{venue} API passphrase: ")
    return Credentials.from_json(data, "input")


@app.command("list")
def list_keys(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Venues with a stored key: masked key id, when added, last permission check."""
    from datetime import UTC, datetime

    settings = _settings(config)
    store = _open_keystore(settings)
    checks = _latest_checks(settings)
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    for venue, credentials in store.items():
        check = checks.get(venue)
        age = (now - credentials.added_at).days if credentials.added_at else None
        rows.append(
            {
                "venue": venue,
                "key": credentials.key_id,
                "added": credentials.added_at.isoformat(timespec="seconds")
                if credentials.added_at
                else None,
                "age_days": age,
                "configured": venue in settings.venues,
                "last_check": check.checked_at.isoformat(timespec="seconds") if check else None,
                "last_verdict": check.verdict if check else None,
            }
        )
    if as_json:
        print_json(rows)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("venue", "key", "added", "age (days)", "last check", "verdict")
    for row in rows:
        table.add_row(
            row["venue"] + ("" if row["configured"] else " (not configured)"),
            row["key"],
            row["added"] or "?",
            str(row["age_days"] if row["age_days"] is not None else "?"),
            row["last_check"] or "never",
            row["last_verdict"] or "-",
        )
    Console().print(table if rows else f"no keys in {store.path}")


def _latest_checks(settings: Settings) -> dict[str, Any]:
    from arbot.errors import StoreError
    from arbot.store import describe_database

    try:
        if not describe_database(settings.database_url).exists:
            return {}
        from arbot.store import Store
        from arbot.store.records import latest_permission_checks

        with Store(settings.database_url) as store:
            return dict(latest_permission_checks(store))
    except StoreError:
        return {}


@app.command("remove")
def remove(venue: VenueArgument, config: ConfigOption = None) -> None:
    """Delete a venue's key from the keystore."""
    settings = _settings(config)
    store = _open_keystore(settings)
    store.remove(venue)
    store.save()
    typer.echo(f"removed {venue} from {store.path}")


@app.command("passwd")
def passwd(config: ConfigOption = None) -> None:
    """Re-encrypt the keystore under a new passphrase (ARBOT_NEW_PASSPHRASE[_FILE] or asked)."""
    from arbot.keys.passphrase import read_new_passphrase

    settings = _settings(config)
    store = _open_keystore(settings)
    store.change_passphrase(read_new_passphrase())
    store.save()
    typer.echo(f"re-encrypted {store.path} under the new passphrase")


@app.command("check")
def check(
    venue: Annotated[
        str | None, typer.Argument(help="Only this venue (default: every configured venue).")
    ] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Probe each key's live permissions; exit 1 if any can withdraw, transfer out, or
    cannot be proven trade-only."""
    import asyncio

    from arbot.config import load_settings

    base = _settings(config)
    if venue is not None:
        _require_configured(base, venue, config)
    store = _open_keystore(base)
    settings = load_settings(config, credentials=dict(store.items())) if base.venues else base
    names = [venue] if venue else list(settings.venues)
    results = asyncio.run(_probe_all(settings, names))
    _record(settings, results)
    failed = _report(settings, results, as_json)
    if failed:
        raise typer.Exit(1)


async def _probe_all(settings: Settings, names: list[str]) -> dict[str, KeyPermissions | None]:
    import asyncio

    results = await asyncio.gather(*(_probe_one(settings, name) for name in names))
    return dict(zip(names, results, strict=True))


async def _probe_one(settings: Settings, name: str) -> KeyPermissions | None:
    from arbot.keys.permissions import probe_permissions
    from arbot.venues.factory import build_exchange

    venue = settings.venues[name]
    if venue.credentials is None:
        return None
    exchange = build_exchange(name, venue, venue.credentials, websocket=False)
    try:
        return await probe_permissions(
            exchange, venue.exchange, venue.credentials.api_key.get_secret_value()
        )
    finally:
        await exchange.close()


def _record(settings: Settings, results: dict[str, KeyPermissions | None]) -> None:
    from arbot.store import Store
    from arbot.store.records import record_permission_check

    with Store(settings.database_url) as store:
        for name, permissions in results.items():
            credentials = settings.venues[name].credentials
            if permissions is not None and credentials is not None:
                record_permission_check(
                    store, name, settings.venues[name].exchange, credentials.key_id, permissions
                )


def _report(settings: Settings, results: dict[str, KeyPermissions | None], as_json: bool) -> bool:
    """Print the table (or JSON) and the advice; True when any key fails."""
    import sys
    from datetime import UTC, datetime

    from arbot.keys.model import Verdict

    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    advice: list[str] = []  # why a key fails: stderr
    warnings: list[str] = []  # hygiene: stdout
    failed = False
    for name, permissions in results.items():
        venue = settings.venues[name]
        credentials = venue.credentials
        if permissions is None or credentials is None:
            rows.append(
                {
                    "venue": name,
                    "exchange": venue.exchange,
                    "key": None,
                    "verdict": "no key",
                    "reason": f"arbot keys add {name}",
                }
            )
            continue
        verdict = permissions.verdict
        waived = verdict is Verdict.UNVERIFIED and venue.allow_unverified_key
        if verdict is Verdict.UNSAFE or (verdict is Verdict.UNVERIFIED and not waived):
            failed = True
        if verdict is Verdict.UNSAFE:
            howto = TRADE_ONLY_HOWTO.get(
                venue.exchange, "create a key without withdraw or transfer rights"
            )
            advice.append(
                f"{name}: {permissions.reason}; create a trade-only key ({howto}), then: "
                f"arbot keys add {name} --replace"
            )
        elif verdict is Verdict.UNVERIFIED:
            advice.append(
                f"{name}: cannot prove the key is trade-only ({permissions.reason})"
                + (
                    "; allowed by allow_unverified_key"
                    if waived
                    else f"; use a key whose rights {venue.exchange} reports, or set "
                    f"allow_unverified_key = true for [venues.{name}] at your own risk"
                )
            )
        if permissions.ip_restricted is False:
            warnings.append(
                f"{name}: warning: the key has no IP allow-list; restrict it to your server's "
                "address"
            )
        if credentials.added_at is not None:
            age = (now - credentials.added_at).days
            if age > settings.keys.max_age_days:
                warnings.append(
                    f"{name}: warning: the key is {age} days old (limit "
                    f"{settings.keys.max_age_days}); rotate it with: "
                    f"arbot keys add {name} --replace"
                )
        rows.append(
            {
                "venue": name,
                "exchange": venue.exchange,
                "key": credentials.key_id,
                "read": permissions.read,
                "trade": permissions.trade,
                "withdraw": permissions.withdraw,
                "transfer": permissions.transfer,
                "ip_restricted": permissions.ip_restricted,
                "verdict": verdict.value + (" (waived)" if waived else ""),
                "reason": permissions.reason,
            }
        )
    if as_json:
        print_json({"ok": not failed, "keys": rows, "problems": advice, "warnings": warnings})
        return failed
    from rich.console import Console
    from rich.table import Table

    def mark(value: object) -> str:
        return "?" if value is None else ("yes" if value else "no")

    table = Table(
        "venue",
        "exchange",
        "key",
        "read",
        "trade",
        "withdraw",
        "transfer",
        "IP allow-list",
        "verdict",
    )
    for row in rows:
        table.add_row(
            row["venue"],
            row["exchange"],
            row["key"] or "-",
            mark(row.get("read")),
            mark(row.get("trade")),
            mark(row.get("withdraw")),
            mark(row.get("transfer")),
            mark(row.get("ip_restricted")),
            row["verdict"],
        )
    Console(width=None if sys.stdout.isatty() else 160).print(table)
    for line in warnings:
        print(line)
    for line in advice:
        print(line, file=sys.stderr)
    return failed
