"""Settings: TOML plus environment, strict validation, one clear line per problem."""

from __future__ import annotations

import re
import tomllib
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import BaseModel

from arbot.config import Settings, load_settings
from arbot.errors import ConfigError
from arbot.redact import redact
from arbot.templates import starter_config
from arbot.tomlout import dumps

EXAMPLE = Path(__file__).resolve().parents[1] / "config" / "arbot.example.toml"

MINIMAL = """
[venues.binance]
exchange = "binance"
symbols = ["BTC/USDT"]
balances = { USDT = 1000, BTC = 0.1 }

[venues.okx]
exchange = "okx"
symbols = ["BTC/USDT"]
taker_fee = 0.0008
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "arbot.toml"
    path.write_text(text)
    return path


def error_of(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    return str(info.value)


def test_minimal_file_gets_defaults_and_exact_decimals(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, MINIMAL))
    assert settings.mode == "paper"
    assert settings.database_url == "sqlite:///arbot.db"
    assert settings.venues["binance"].balances == {"USDT": Decimal(1000), "BTC": Decimal("0.1")}
    assert settings.venues["okx"].taker_fee == Decimal("0.0008")
    assert settings.venues["okx"].maker_fee is None
    assert settings.risk.max_book_age_ms == 1000


def test_environment_overrides_the_file_at_any_depth(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARBOT_MODE", "live")
    monkeypatch.setenv("ARBOT_RISK__MAX_BOOK_AGE_MS", "250")
    monkeypatch.setenv("ARBOT_VENUES__OKX__RATE_LIMIT", "7.5")
    monkeypatch.setenv("ARBOT_VENUES__BINANCE__SYMBOLS", '["ETH/USDT", "BTC/USDT"]')
    monkeypatch.setenv("ARBOT_PASSPHRASE", "not-a-setting")  # other ARBOT_ variables are ignored
    settings = load_settings(write(tmp_path, MINIMAL))
    assert settings.mode == "live"
    assert settings.risk.max_book_age_ms == 250
    assert settings.venues["okx"].rate_limit == 7.5
    assert settings.venues["okx"].taker_fee == Decimal("0.0008")  # file value kept beside it
    assert settings.venues["binance"].symbols == ["ETH/USDT", "BTC/USDT"]
    assert settings.venues["binance"].balances["USDT"] == Decimal(1000)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('mode = "yolo"', r"arbot\.toml: mode: input should be 'paper' or 'live' \(got 'yolo'\)"),
        (
            "colour = 1",
            r"arbot\.toml: colour: unknown key; expected one of: backtest, database_url, ",
        ),
        (
            '[risk]\nmax_book_age_ms = "soon"',
            r"arbot\.toml: risk\.max_book_age_ms: input should be a valid integer.*\(got 'soon'\)",
        ),
        (
            '[venues.a]\nexchange = "binance"\nsymbols = ["BTC/USDT"]\nrate_limt = 3',
            r"arbot\.toml: venues\.a\.rate_limt: unknown key; expected one of: "
            r"allow_unverified_key, balances, book_source, endpoint, exchange, maker_fee, "
            r"poll_interval_ms, rate_limit,",
        ),
        (
            '[venues.a]\nexchange = "binanse"\nsymbols = ["BTC/USDT"]',
            r"venues\.a\.exchange: 'binanse' is not a ccxt exchange id; did you mean 'binance'\?",
        ),
        (
            '[venues.a]\nexchange = "okx"\nsymbols = ["btc-usdt"]',
            r"venues\.a\.symbols: symbol 'btc-usdt' must be BASE/QUOTE in capitals",
        ),
        ('[venues.a]\nexchange = "okx"', r"venues\.a\.symbols: required key is missing"),
        (
            '[venues.a]\nexchange = "okx"\nsymbols = ["BTC/USDT"]\nendpoint = "ftp://x"',
            r"venues\.a\.endpoint: 'ftp://x' is not an http\(s\) base URL",
        ),
        (
            '[venues.a]\nexchange = "okx"\nsymbols = ["BTC/USDT"]\nendpoint = "http://h"\n'
            "sandbox = true",
            r"venues\.a: set either endpoint or sandbox, not both",
        ),
        (
            '[venues.a]\nexchange = "okx"\nsymbols = ["BTC/USDT"]\nbalances = { USDT = -5 }',
            r"venues\.a\.balances\.USDT: input should be greater than or equal to 0",
        ),
        (
            '[venues.a]\nexchange = "okx"\nsymbols = ["BTC/USDT"]\ntaker_fee = 0.5',
            r"venues\.a\.taker_fee: input should be less than or equal to 0\.05",
        ),
        (
            '[venues.Binance]\nexchange = "okx"\nsymbols = ["BTC/USDT"]',
            r"venues: venue name 'Binance' must be lowercase",
        ),
        ('[log]\nlevel = "LOUD"', r"log\.level: input should be 'TRACE', 'DEBUG'"),
        ('database_url = "mysql://x"', r"database_url: expected a sqlite:/// or postgresql"),
    ],
)
def test_each_bad_value_is_one_line_naming_file_key_and_expectation(
    tmp_path: Path, text: str, expected: str
) -> None:
    message = error_of(write(tmp_path, text))
    assert len(message.splitlines()) == 1, message
    assert message.startswith(str(tmp_path / "arbot.toml") + ": ")
    assert re.search(expected, message), message


def test_invalid_toml_names_the_line(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, 'mode = "paper"\n[risk\nmax_book_age_ms = 5\n'))
    assert "arbot.toml: invalid TOML" in message
    assert "line 2" in message
    assert len(message.splitlines()) == 1


def test_missing_file_says_how_to_create_one(tmp_path: Path) -> None:
    message = error_of(tmp_path / "nope.toml")
    assert (
        message
        == f"{tmp_path / 'nope.toml'}: file not found; create one with 'arbot init' or pass -c FILE"
    )


def test_not_utf8_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "arbot.toml"
    path.write_bytes(b'mode = "\xff"')
    assert "not UTF-8" in error_of(path)


def test_bad_environment_value_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARBOT_RISK__MAX_DAILY_LOSS", "lots")
    message = error_of(write(tmp_path, MINIMAL))
    assert message.startswith("environment ARBOT_RISK__MAX_DAILY_LOSS: risk.max_daily_loss: ")


def test_several_problems_give_one_line_each(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, 'mode = "yolo"\ncolour = 1\n'))
    assert len(message.splitlines()) == 2


def test_database_password_is_masked_and_never_echoed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARBOT_DATABASE_URL", "postgresql+psycopg://arbot:Canary-PW-93@db/arbot")
    settings = load_settings(write(tmp_path, MINIMAL))
    assert settings.masked()["database_url"] == "postgresql+psycopg://arbot:***@db/arbot"
    assert "Canary-PW-93" not in dumps(settings.masked(mode="python"))
    assert redact("connect failed for Canary-PW-93") == "connect failed for ***"
    monkeypatch.setenv("ARBOT_DATABASE_URL", "oracle://arbot:Canary-PW-93@db/arbot")
    assert "Canary-PW-93" not in error_of(write(tmp_path, MINIMAL))


def test_shown_settings_read_back_to_the_same_settings(tmp_path: Path) -> None:
    settings = load_settings(EXAMPLE)
    shown = dumps(settings.masked(mode="python"))
    again = load_settings(write(tmp_path, shown))
    assert again == settings


def test_starter_config_is_the_documented_example_and_valid() -> None:
    assert starter_config() == EXAMPLE.read_text()
    settings = load_settings(EXAMPLE)
    assert settings.mode == "paper"
    assert {v.exchange for v in settings.venues.values()} == {"binance", "okx"}


def _documented_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        if field.exclude:  # filled by arbot (keystore credentials), not by the user
            continue
        key = field.alias or name
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys += _documented_keys(annotation, f"{prefix}{key}.")
        else:
            keys.append(prefix + key)
    return keys


def test_example_documents_every_key_with_a_comment() -> None:
    """A key added to Settings without a line in the example fails here."""
    from arbot.config import VenueConfig

    text = EXAMPLE.read_text()
    tomllib.loads(text)
    lines = text.splitlines()
    wanted = [k for k in _documented_keys(Settings) if not k.startswith("venues")]
    wanted += [f"venues.binance.{k}" for k in _documented_keys(VenueConfig)]
    for dotted in wanted:
        leaf = dotted.rsplit(".", 1)[-1]
        pattern = re.compile(rf"^#?\s*({re.escape(leaf)} = |\[{re.escape(dotted)}\])")
        index = next((i for i, line in enumerate(lines) if pattern.match(line)), None)
        assert index is not None, f"{dotted} is not in {EXAMPLE.name}"
        assert any(lines[j].startswith("#") for j in range(max(0, index - 4), index + 1)), (
            f"{dotted} has no comment near it"
        )
