"""The simulator's settings (``arbot sim -c FILE``), validated like arbot's own.

With no file, :func:`load_sim_config` reads the packaged ``default.toml``: two venues
(``binance`` on the Binance spot protocol, ``okx`` on OKX v5) with six symbols each,
funded accounts, and a trade-only key plus a withdraw-enabled key per venue.
"""

from __future__ import annotations

import hashlib
import tomllib
import uuid
from decimal import Decimal
from importlib.resources import files
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from arbot.config import describe_errors, read_toml
from arbot.errors import ConfigError
from arbot.sim.makers import MakerParams

PROTOCOLS = ("binance", "okx")
PERMISSIONS = frozenset({"read", "trade", "withdraw", "transfer"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AssetConfig(_Strict):
    usd: float = Field(gt=0)
    volatility: float = Field(default=0.0005, ge=0, le=0.05)


class MarketConfig(_Strict):
    tick: Decimal = Field(gt=0)
    lot: Decimal = Field(gt=0)
    min_amount: Decimal = Field(default=Decimal(0), ge=0)
    max_amount: Decimal = Field(default=Decimal(10**9), gt=0)
    min_notional: Decimal = Field(default=Decimal(0), ge=0)


class KeyConfig(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")
    permissions: list[str]
    api_key: str | None = None
    secret: str | None = None
    passphrase: str | None = None
    ip_restricted: bool = False

    @field_validator("permissions")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - PERMISSIONS)
        if unknown:
            raise ValueError(
                f"unknown permission(s) {', '.join(unknown)}; use read, trade, withdraw, transfer"
            )
        return value


class MakerConfig(_Strict):
    levels: int = Field(default=MakerParams.levels, ge=1, le=500)
    half_spread_bps: float = Field(default=MakerParams.half_spread_bps, gt=0)
    level_gap_bps: float = Field(default=MakerParams.level_gap_bps, gt=0)
    level_notional_usd: float = Field(default=MakerParams.level_notional_usd, gt=0)
    latency_ms: float = Field(default=MakerParams.latency_ms, ge=0, le=10_000)
    noise_bps: float = Field(default=MakerParams.noise_bps, ge=0)
    reversion_per_s: float = Field(default=MakerParams.reversion_per_s, gt=0)
    dislocation_every_s: float = Field(default=MakerParams.dislocation_every_s, ge=0)
    dislocation_bps: float = Field(default=MakerParams.dislocation_bps, ge=0)

    def params(self) -> MakerParams:
        return MakerParams(**self.model_dump())


class VenueSimConfig(_Strict):
    protocol: str
    symbols: list[str] = Field(min_length=1)
    maker_fee: Decimal = Field(default=Decimal("0.001"), ge=Decimal("-0.01"), le=Decimal("0.05"))
    taker_fee: Decimal = Field(default=Decimal("0.001"), ge=0, le=Decimal("0.05"))
    updates_per_second: float = Field(default=20, ge=0, le=1000)
    balances: dict[str, Decimal] = Field(default_factory=dict)
    makers: MakerConfig = Field(default_factory=MakerConfig)
    keys: list[KeyConfig] = Field(default_factory=list)
    markets: dict[str, MarketConfig] = Field(default_factory=dict)
    """This venue's own grid for a symbol, overriding the shared ``[markets]`` table."""

    @field_validator("protocol")
    @classmethod
    def _known_protocol(cls, value: str) -> str:
        if value not in PROTOCOLS:
            raise ValueError(
                f"unknown venue protocol {value!r}; use one of: {', '.join(PROTOCOLS)}"
            )
        return value


class SimConfig(_Strict):
    seed: int = 7
    port: int = Field(default=8765, ge=0, le=65535)
    assets: dict[str, AssetConfig] = Field(default_factory=dict)
    markets: dict[str, MarketConfig] = Field(default_factory=dict)
    venues: dict[str, VenueSimConfig] = Field(min_length=1)

    @field_validator("venues")
    @classmethod
    def _venue_names(cls, value: dict[str, VenueSimConfig]) -> dict[str, VenueSimConfig]:
        for name in value:
            if (
                not name.replace("_", "").replace("-", "").isalnum()
                or name != name.lower()
                or name.startswith("_")
            ):
                raise ValueError(
                    f"venue name {name!r} must be lowercase letters, digits, '-' or '_'"
                )
        return value

    @model_validator(mode="after")
    def _symbols_defined(self) -> SimConfig:
        for name, venue in self.venues.items():
            for symbol in venue.symbols:
                if symbol not in self.markets and symbol not in venue.markets:
                    raise ValueError(
                        f'venues.{name}: symbol {symbol} has no [markets."{symbol}"] table'
                    )
                base, _, quote = symbol.partition("/")
                for asset in (base, quote):
                    if asset not in self.assets and asset not in ("USDT", "USDC", "USD", "FDUSD"):
                        raise ValueError(
                            f"venues.{name}: asset {asset} of {symbol} has no "
                            f"[assets.{asset}] table"
                        )
        return self

    def market_for(self, venue: str, symbol: str) -> MarketConfig:
        """The grid of ``symbol`` on ``venue``: the venue's own, else the shared one."""
        return self.venues[venue].markets.get(symbol) or self.markets[symbol]

    def keys_for(self, venue: str) -> list[KeyConfig]:
        """The venue's keys, with generated defaults and generated credentials filled in."""
        config = self.venues[venue]
        keys = config.keys or [
            KeyConfig(name="trade", permissions=["read", "trade"]),
            KeyConfig(name="withdraw", permissions=["read", "trade", "withdraw", "transfer"]),
        ]
        return [self._complete(venue, config.protocol, key) for key in keys]

    def _complete(self, venue: str, protocol: str, key: KeyConfig) -> KeyConfig:
        def derived(purpose: str) -> str:
            return hashlib.sha256(f"{self.seed}:{venue}:{key.name}:{purpose}".encode()).hexdigest()

        if protocol == "okx":
            api_key = key.api_key or str(uuid.UUID(derived("key")[:32]))
            secret = key.secret or derived("secret")[:32].upper()
            passphrase = key.passphrase or f"Sim-{derived('pass')[:10]}"
        else:
            api_key = key.api_key or (derived("key") + derived("key2"))[:64]
            secret = key.secret or (derived("secret") + derived("secret2"))[:64]
            passphrase = key.passphrase or ""
        return key.model_copy(
            update={"api_key": api_key, "secret": secret, "passphrase": passphrase}
        )


def default_config_text() -> str:
    return (files("arbot.sim") / "default.toml").read_text(encoding="utf-8")


def load_sim_config(path: Path | None = None, **overrides: Any) -> SimConfig:
    """Read and validate a simulator config (the packaged default when ``path`` is None)."""
    if path is None:
        document = tomllib.loads(default_config_text())
        source = Path("<built-in sim config>")
    else:
        document = read_toml(path)
        source = path
    document.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return SimConfig.model_validate(document)
    except ValidationError as exc:
        raise ConfigError(
            "\n".join(describe_errors(exc, source, document, environ={}, model=SimConfig))
        ) from None


__all__ = ["PROTOCOLS", "KeyConfig", "SimConfig", "VenueSimConfig", "load_sim_config"]
