"""One venue's API credentials, as the keystore holds them and ccxt receives them.

A light module (pydantic only) so the settings can carry credentials without importing
the keystore's cryptography.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr

from arbot.errors import ArbotError
from arbot.redact import register_secret


class CredentialsError(ArbotError):
    """Credentials given to ``arbot keys add`` are incomplete or malformed."""


class Credentials(BaseModel):
    """Secrets stay :class:`SecretStr` until :meth:`ccxt_config` hands them to ccxt."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    api_key: SecretStr
    secret: SecretStr
    password: SecretStr | None = None
    uid: str | None = None
    added_at: datetime | None = None

    @property
    def key_id(self) -> str:
        """The API key masked for display: enough to recognise it, not to use it."""
        key = self.api_key.get_secret_value()
        return f"{key[:4]}…{key[-4:]}" if len(key) >= 16 else "…"

    def register(self) -> None:
        """Mask these secrets in every log line and error message from now on."""
        register_secret(self.api_key.get_secret_value())
        register_secret(self.secret.get_secret_value())
        if self.password is not None:
            register_secret(self.password.get_secret_value())

    def ccxt_config(self) -> dict[str, str]:
        """The constructor arguments ccxt takes: the only place secrets leave SecretStr."""
        config = {
            "apiKey": self.api_key.get_secret_value(),
            "secret": self.secret.get_secret_value(),
        }
        if self.password is not None:
            config["password"] = self.password.get_secret_value()
        if self.uid:
            config["uid"] = self.uid
        return config

    @classmethod
    def from_json(cls, data: Any, where: str) -> Credentials:
        """Build from ``{"apiKey", "secret"[, "password", "uid"]}`` (``keys add --stdin``)."""
        if not isinstance(data, dict):
            raise CredentialsError(f"{where}: expected a JSON object with apiKey and secret")
        unknown = sorted(set(data) - {"apiKey", "secret", "password", "uid", "added_at"})
        if unknown:
            raise CredentialsError(
                f"{where}: unknown field(s) {', '.join(unknown)}; expected apiKey, secret, "
                "password, uid"
            )
        for name in ("apiKey", "secret"):
            if not isinstance(data.get(name), str) or not data[name].strip():
                raise CredentialsError(f"{where}: {name} is missing or empty")
        for name in ("password", "uid", "added_at"):
            if data.get(name) is not None and not isinstance(data[name], str):
                raise CredentialsError(f"{where}: {name} must be a string")
        added = data.get("added_at")
        try:
            added_at = datetime.fromisoformat(added) if added else None
        except ValueError:
            raise CredentialsError(f"{where}: added_at is not an ISO date") from None
        return cls(
            api_key=SecretStr(data["apiKey"].strip()),
            secret=SecretStr(data["secret"].strip()),
            password=SecretStr(data["password"]) if data.get("password") else None,
            uid=data.get("uid") or None,
            added_at=added_at,
        )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "apiKey": self.api_key.get_secret_value(),
            "secret": self.secret.get_secret_value(),
        }
        if self.password is not None:
            data["password"] = self.password.get_secret_value()
        if self.uid:
            data["uid"] = self.uid
        if self.added_at is not None:
            data["added_at"] = self.added_at.isoformat()
        return data
