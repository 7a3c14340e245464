"""Settings: one TOML file, overridden by ``ARBOT_*`` environment variables, validated strictly.

Precedence, highest first: values passed in code, ``ARBOT_*`` environment variables
(``__`` separates nesting: ``ARBOT_VENUES__BINANCE__RATE_LIMIT=5``; lists and tables as
JSON), then the TOML file. Unknown keys anywhere are errors, so a typo never silently
falls back to a default. Relative paths are relative to the working directory, like
the default ``-c config/arbot.toml``.

Every validation problem becomes one line naming where the value came from (the file,
or the environment variable), the dotted key, and what is expected.
"""

from __future__ import annotations

import os
import re
import tomllib
import types
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from arbot.errors import ConfigError
from arbot.keys.credentials import Credentials
from arbot.redact import mask_url_password, register_secret, url_password
from arbot.venues.catalog import is_known_exchange, known_exchange_ids

DEFAULT_CONFIG_PATH = Path("config/arbot.toml")
ENV_PREFIX = "ARBOT_"
ENV_NESTING = "__"

_SYMBOL = re.compile(r"^[A-Z0-9][A-Z0-9.\-_]*/[A-Z0-9][A-Z0-9.\-_]*$")
_ASSET = re.compile(r"^[A-Z0-9][A-Z0-9.\-_]*$")
_VENUE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_ENDPOINT = re.compile(r"^(http|https)://[^/\s?#]+(/[^\s?#]*)?$")
_DATABASE_URL = re.compile(r"^(sqlite|postgresql)(\+\w+)?://")
# Keys whose bad values must never be echoed back in an error message.
_SENSITIVE_KEYS = frozenset({"database_url"})

NonNegativeDecimal = Annotated[Decimal, Field(ge=0)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VenueConfig(_Section):
    """One account on one exchange (``[venues.NAME]``)."""

    exchange: str
    symbols: list[str] = Field(min_length=1)
    endpoint: str | None = None
    sandbox: bool = False
    allow_unverified_key: bool = False
    rate_limit: float | None = Field(default=None, gt=0)
    book_source: Literal["auto", "stream", "poll"] = "auto"
    poll_interval_ms: float = Field(default=1000.0, ge=50, le=60_000)
    stall_after_s: float = Field(default=10.0, ge=0.1, le=3600)
    taker_fee: Decimal | None = Field(default=None, ge=0, le=Decimal("0.05"))
    maker_fee: Decimal | None = Field(default=None, ge=Decimal("-0.01"), le=Decimal("0.05"))
    balances: dict[str, NonNegativeDecimal] = Field(default_factory=dict)
    credentials: Credentials | None = Field(default=None, exclude=True)
    """Filled from the keystore only (never from the file or the environment)."""

    @field_validator("exchange")
    @classmethod
    def _known_exchange(cls, value: str) -> str:
        if not is_known_exchange(value):
            hint = _closest(value, known_exchange_ids())
            suggestion = f"; did you mean {hint!r}?" if hint else ""
            raise ValueError(f"{value!r} is not a ccxt exchange id{suggestion}")
        return value

    @field_validator("symbols")
    @classmethod
    def _symbols_look_like_pairs(cls, value: list[str]) -> list[str]:
        for symbol in value:
            if not _SYMBOL.match(symbol):
                raise ValueError(
                    f"symbol {symbol!r} must be BASE/QUOTE in capitals, e.g. 'BTC/USDT'"
                )
        if len(set(value)) != len(value):
            raise ValueError("symbols are listed more than once")
        return value

    @field_validator("endpoint")
    @classmethod
    def _endpoint_is_http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not _ENDPOINT.match(value):
            raise ValueError(
                f"{value!r} is not an http(s) base URL, e.g. 'http://127.0.0.1:8765/binance'"
            )
        return value.rstrip("/")

    @field_validator("balances")
    @classmethod
    def _assets_in_capitals(cls, value: dict[str, Decimal]) -> dict[str, Decimal]:
        for asset in value:
            if not _ASSET.match(asset):
                raise ValueError(f"asset {asset!r} must be a currency code in capitals, e.g. USDT")
        return value

    @model_validator(mode="after")
    def _endpoint_or_sandbox(self) -> VenueConfig:
        if self.endpoint and self.sandbox:
            raise ValueError("set either endpoint or sandbox, not both")
        return self


class StrategyConfig(_Section):
    """Which strategy plugin runs, and its parameters (validated by the plugin)."""

    name: str = "cross_exchange"
    params: dict[str, Any] = Field(default_factory=dict)
    path: Path = Path("strategies")


class RiskConfig(_Section):
    """Limits the risk engine enforces before any leg is sent. Notionals are in quote."""

    max_book_age_ms: int = Field(default=1000, gt=0)
    max_order_notional: Decimal = Field(default=Decimal(1000), gt=0)
    max_symbol_notional: Decimal = Field(default=Decimal(5000), gt=0)
    max_open_exposure: Decimal = Field(default=Decimal(10000), gt=0)
    max_orders_per_second: float = Field(default=5.0, gt=0)
    max_daily_loss: Decimal = Field(default=Decimal(100), gt=0)
    max_consecutive_failures: int = Field(default=5, ge=1)
    max_unwind_loss_bps: Decimal = Field(default=Decimal(50), ge=0)
    unwind_attempts: int = Field(default=5, ge=1, le=100)
    unwind_backoff_ms: float = Field(default=200.0, ge=0, le=60_000)
    order_timeout_s: float = Field(default=5.0, gt=0, le=120)
    cancel_unknown_orders: bool = False
    use_fok: bool = False
    permission_recheck_s: int = Field(default=300, ge=10)


class KeysConfig(_Section):
    """Hygiene rules for API keys."""

    max_age_days: int = Field(default=90, ge=1)


class OpsConfig(_Section):
    """How the daemon is operated: the local HTTP endpoint and its pid file."""

    port: int | None = Field(default=None, ge=0, le=65535)
    pid_file: Path = Path("arbot.pid")
    heartbeat_s: float = Field(default=5.0, gt=0, le=300)


class LogConfig(_Section):
    level: Literal["TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    json_lines: bool = Field(default=False, alias="json")
    file: Path | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class LatencyConfig(_Section):
    """One latency model of ``arbot backtest``: ``ms`` plus a random part of ``jitter_ms``.

    ``uniform``: the random part is uniform in [0, jitter_ms]; ``exponential``: its mean
    is jitter_ms; ``normal``: ms + N(0, jitter_ms), never below zero. No jitter, no draw.
    """

    ms: float = Field(default=0.0, ge=0, le=600_000, allow_inf_nan=False)
    jitter_ms: float = Field(default=0.0, ge=0, le=600_000, allow_inf_nan=False)
    distribution: Literal["uniform", "normal", "exponential"] = "uniform"


class MarketGridConfig(_Section):
    """A market's grid and limits for ``arbot backtest`` (datasets hold books, not markets)."""

    price_tick: Decimal = Field(gt=0)
    amount_step: Decimal = Field(gt=0)
    min_amount: NonNegativeDecimal = Decimal(0)
    min_notional: NonNegativeDecimal = Decimal(0)
    max_amount: Decimal | None = Field(default=None, gt=0)


class BacktestVenueConfig(_Section):
    """``[backtest.venues.NAME]``: how one configured venue behaves in a backtest."""

    data_latency: LatencyConfig = Field(default_factory=LatencyConfig)
    order_latency: LatencyConfig = Field(default_factory=LatencyConfig)
    markets: dict[str, MarketGridConfig] = Field(default_factory=dict)

    @field_validator("markets")
    @classmethod
    def _symbols_look_like_pairs(
        cls, value: dict[str, MarketGridConfig]
    ) -> dict[str, MarketGridConfig]:
        for symbol in value:
            if not _SYMBOL.match(symbol):
                raise ValueError(
                    f"symbol {symbol!r} must be BASE/QUOTE in capitals, e.g. 'BTC/USDT'"
                )
        return value


class BacktestConfig(_Section):
    """``[backtest]``: replaying recorded books (``arbot backtest``)."""

    seed: int = Field(default=0, ge=0)
    fee_asset: Literal["received", "quote"] = "received"
    venues: dict[str, BacktestVenueConfig] = Field(default_factory=dict)


_toml_data: ContextVar[dict[str, Any]] = ContextVar("_toml_data")
_keystore_credentials: ContextVar[dict[str, Credentials]] = ContextVar("_keystore_credentials")


class _TomlSource(PydanticBaseSettingsSource):
    """Feeds the already-parsed TOML document (parsed by us for better errors)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        return _toml_data.get({})


class KeystoreSource(PydanticBaseSettingsSource):
    """Each configured venue's credentials, from an unlocked keystore (highest priority).

    Only venues that the file or the environment define get credentials: a key for a
    venue that is not configured is not a venue.
    """

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        credentials = _keystore_credentials.get({})
        configured = set(_toml_data.get({}).get("venues", {})) | _env_venues()
        venues = {name: {"credentials": c} for name, c in credentials.items() if name in configured}
        return {"venues": venues} if venues else {}


class Settings(BaseSettings):
    """Everything arbot reads at start-up. Build it with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTING,
        extra="forbid",
        frozen=True,
    )

    mode: Literal["paper", "live"] = "paper"
    database_url: str = "sqlite:///arbot.db"
    keystore: Path = Path("config/keys.enc")
    venues: dict[str, VenueConfig] = Field(default_factory=dict)
    strategy: StrategyConfig = Field(default_factory=StrategyConfig)
    risk: RiskConfig = Field(default_factory=RiskConfig)
    keys: KeysConfig = Field(default_factory=KeysConfig)
    ops: OpsConfig = Field(default_factory=OpsConfig)
    log: LogConfig = Field(default_factory=LogConfig)
    backtest: BacktestConfig = Field(default_factory=BacktestConfig)

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if not _DATABASE_URL.match(value):
            raise ValueError(
                "expected a sqlite:/// or postgresql+psycopg:// URL, e.g. 'sqlite:///arbot.db'"
            )
        return value

    @field_validator("venues")
    @classmethod
    def _venue_names(cls, value: dict[str, VenueConfig]) -> dict[str, VenueConfig]:
        for name in value:
            if not _VENUE_NAME.match(name):
                raise ValueError(
                    f"venue name {name!r} must be lowercase letters, digits, '_' or '-' "
                    "(it appears in URLs, logs and the database)"
                )
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, KeystoreSource(settings_cls), env_settings, _TomlSource(settings_cls)

    def masked(self, mode: Literal["json", "python"] = "json") -> dict[str, Any]:
        """The effective settings as plain data, safe to print: no secret in clear."""
        data = self.model_dump(mode=mode, by_alias=True)
        data["database_url"] = mask_url_password(self.database_url)
        return data


def load_settings(
    path: Path | str | None = None,
    *,
    credentials: Mapping[str, Credentials] | None = None,
    **overrides: Any,
) -> Settings:
    """Read ``path`` (default ``config/arbot.toml``), apply the environment, validate.

    ``credentials`` (venue → credentials, from an unlocked keystore) fill each configured
    venue's ``credentials``; the file and the environment may not. Raises
    :class:`ConfigError` with one line per problem; never a traceback.
    """
    path = Path(path) if path is not None else DEFAULT_CONFIG_PATH
    data = read_toml(path)
    _refuse_plain_credentials(data, path)
    token = _keystore_credentials.set(dict(credentials or {}))
    try:
        with _toml_document(data):
            try:
                settings = Settings(**overrides)
            except ValidationError as exc:
                raise ConfigError("\n".join(describe_errors(exc, path, data))) from None
    finally:
        _keystore_credentials.reset(token)
    register_secret(url_password(settings.database_url))
    return settings


def _env_venues() -> set[str]:
    prefix = f"{ENV_PREFIX}VENUES{ENV_NESTING}"
    return {
        name[len(prefix) :].split(ENV_NESTING, 1)[0].lower()
        for name in os.environ
        if name.upper().startswith(prefix)
    }


def _refuse_plain_credentials(document: Mapping[str, Any], path: Path) -> None:
    """API keys live in the encrypted keystore, never in the settings file or environment."""
    venues = document.get("venues")
    for name, venue in venues.items() if isinstance(venues, dict) else []:
        if isinstance(venue, dict) and "credentials" in venue:
            raise ConfigError(
                f"{path}: venues.{name}.credentials: API keys do not belong in the settings "
                f"file; remove them and store them encrypted with: arbot keys add {name}"
            )
    for variable in os.environ:
        if variable.upper().startswith(f"{ENV_PREFIX}VENUES{ENV_NESTING}") and (
            f"{ENV_NESTING}CREDENTIALS" in variable.upper()
        ):
            raise ConfigError(
                f"environment {variable}: API keys do not belong in the environment; unset it "
                "and store them encrypted with: arbot keys add VENUE"
            )


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file, turning every way it can fail into a one-line ConfigError."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: file not found; create one with 'arbot init' or pass -c FILE"
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory; pass the TOML file with -c FILE") from None
    except PermissionError:
        raise ConfigError(f"{path}: permission denied; make it readable by this user") from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {exc.start}); save the file as UTF-8"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


@contextmanager
def _toml_document(data: dict[str, Any]) -> Iterator[None]:
    token = _toml_data.set(data)
    try:
        yield
    finally:
        _toml_data.reset(token)


def describe_errors(
    exc: ValidationError,
    path: Path,
    document: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
    model: type[BaseModel] | None = None,
) -> list[str]:
    """One line per validation error: ``SOURCE: KEY: PROBLEM``.

    ``model`` is the root model that was validated (default :class:`Settings`); it is
    walked to list the accepted keys when a key is unknown.
    """
    environ = os.environ if environ is None else environ
    env_upper = {name.upper(): name for name in environ}
    lines = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        key = _dotted(loc)
        source = _source_of(loc, path, document, env_upper)
        lines.append(f"{source}: {key}: {_problem(error, loc, model or Settings)}")
    return lines


def _source_of(
    loc: tuple[Any, ...], path: Path, document: Mapping[str, Any], env_upper: Mapping[str, str]
) -> str:
    """Name the environment variable that set ``loc`` if one did, else the file."""
    parts = [str(p) for p in loc if not isinstance(p, int)]
    for end in range(len(parts), 0, -1):
        name = ENV_PREFIX + ENV_NESTING.join(parts[:end]).upper()
        if name in env_upper:
            return f"environment {env_upper[name]}"
    return str(path)


def _problem(error: Mapping[str, Any], loc: tuple[Any, ...], model: type[BaseModel]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(model, loc[:-1])
        listing = f"; expected one of: {', '.join(allowed)}" if allowed else ""
        return f"unknown key{listing}"
    if kind == "missing":
        return "required key is missing"
    message = str(error["msg"])
    message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    message = message[:1].lower() + message[1:]
    value = error.get("input")
    sensitive = any(str(part) in _SENSITIVE_KEYS for part in loc)
    if not sensitive and isinstance(value, (str, int, float, bool)) and repr(value) not in message:
        message += f" (got {value!r})"
    return message


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys the model at ``loc`` accepts, for 'unknown key' hints."""
    annotation: Any = model
    for part in loc:
        annotation = unwrap_optional(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(str(part))
            if field is None:
                field = next((f for f in annotation.model_fields.values() if f.alias == part), None)
            if field is None:
                return []
            annotation = field.annotation
        elif get_origin(annotation) in (dict, list):
            annotation = get_args(annotation)[-1]
        else:
            return []
    annotation = unwrap_optional(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return sorted(
            f.alias or name for name, f in annotation.model_fields.items() if not f.exclude
        )
    return []


def unwrap_optional(annotation: Any) -> Any:
    """``X`` from ``X | None`` (``Optional[X]``); anything else as it is."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _closest(word: str, candidates: frozenset[str]) -> str | None:
    import difflib

    matches = difflib.get_close_matches(word, sorted(candidates), n=1, cutoff=0.75)
    return matches[0] if matches else None
