"""The encrypted keystore: one file holding every venue's API credentials.

Envelope (JSON, version 1)::

    {"format": "arbot-keystore", "version": 1,
     "kdf": {"name": "scrypt", "n": 131072, "r": 8, "p": 1, "salt": <b64 16 bytes>},
     "cipher": {"name": "aes-256-gcm", "nonce": <b64 12 bytes>},
     "check": <b64 HMAC-SHA256>, "ciphertext": <b64>}

scrypt turns the passphrase into 64 bytes: the first 32 are the AES-256-GCM key, the last
32 key an HMAC over the header (``check``). The header is also the cipher's associated
data. So a wrong passphrase (or an altered header) fails the check and is reported as
such, and any change to the ciphertext fails GCM authentication and is reported as
tampering — never as a wrong passphrase. Writes go to a temp file (mode 0600) that is
renamed over the keystore, so a crash never leaves half a file.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from pydantic import SecretStr

from arbot.errors import ArbotError
from arbot.fileio import atomic_write_bytes
from arbot.keys.credentials import Credentials, CredentialsError
from arbot.redact import register_secret

FORMAT = "arbot-keystore"
VERSION = 1
SCRYPT_N = 2**17  # 128 MiB of memory per attempt: slow for an attacker's guesses
SCRYPT_R = 8
SCRYPT_P = 1
MIN_SCRYPT_N = 2**14  # files asking for less are refused as weakened
MAX_SCRYPT_N = 2**22
MIN_PASSPHRASE_LENGTH = 8
_CHECK_LABEL = b"arbot-keystore-v1 header check"


class KeystoreError(ArbotError):
    """The keystore cannot be read or written; the message names the file and the fix."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: Any, path: Path, what: str) -> bytes:
    if not isinstance(text, str):
        raise KeystoreError(
            f"{path}: not a valid keystore ({what} missing); restore it from a backup"
        )
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        raise KeystoreError(
            f"{path}: not a valid keystore ({what} is not base64); restore it from a backup"
        ) from None


@dataclass(frozen=True)
class _Kdf:
    salt: bytes
    n: int = SCRYPT_N
    r: int = SCRYPT_R
    p: int = SCRYPT_P

    def header(self) -> dict[str, Any]:
        return {"name": "scrypt", "n": self.n, "r": self.r, "p": self.p, "salt": _b64(self.salt)}

    def derive(self, passphrase: SecretStr) -> tuple[bytes, bytes]:
        material = Scrypt(salt=self.salt, length=64, n=self.n, r=self.r, p=self.p).derive(
            passphrase.get_secret_value().encode("utf-8")
        )
        return material[:32], material[32:]


def _aad(kdf: dict[str, Any], cipher: dict[str, Any]) -> bytes:
    header = {"format": FORMAT, "version": VERSION, "kdf": kdf, "cipher": cipher}
    return json.dumps(header, sort_keys=True, separators=(",", ":")).encode()


def _check(check_key: bytes, aad: bytes) -> bytes:
    return hmac.new(check_key, _CHECK_LABEL + aad, hashlib.sha256).digest()


class Keystore:
    """Credentials per venue, decrypted in memory; :meth:`save` encrypts them back."""

    def __init__(
        self, path: Path, passphrase: SecretStr, entries: dict[str, Credentials], kdf: _Kdf
    ) -> None:
        self.path = path
        self._passphrase = passphrase
        self._entries = entries
        self._kdf = kdf
        self._keys: tuple[bytes, bytes] | None = None

    # ----- opening and saving -----------------------------------------------------------

    @classmethod
    def create(cls, path: Path, passphrase: SecretStr, *, scrypt_n: int = SCRYPT_N) -> Keystore:
        """A new, empty keystore (written on the first :meth:`save`)."""
        if path.exists():
            raise KeystoreError(f"{path}: already exists; open it instead of creating a new one")
        check_passphrase_strength(passphrase)
        register_secret(passphrase.get_secret_value())
        return cls(path, passphrase, {}, _Kdf(secrets.token_bytes(16), n=scrypt_n))

    @classmethod
    def open(cls, path: Path, passphrase: SecretStr) -> Keystore:
        """Decrypt ``path``; wrong passphrase, tampering and damage are distinct errors."""
        register_secret(passphrase.get_secret_value())
        envelope = _read_envelope(path)
        kdf = _parse_kdf(envelope, path)
        cipher = envelope.get("cipher")
        if not isinstance(cipher, dict) or cipher.get("name") != "aes-256-gcm":
            raise KeystoreError(
                f"{path}: not a valid keystore (unknown cipher); restore it from a backup"
            )
        nonce = _unb64(cipher.get("nonce"), path, "nonce")
        check = _unb64(envelope.get("check"), path, "check")
        ciphertext = _unb64(envelope.get("ciphertext"), path, "ciphertext")
        enc_key, check_key = kdf.derive(passphrase)
        aad = _aad(kdf.header(), {"name": "aes-256-gcm", "nonce": _b64(nonce)})
        if not hmac.compare_digest(_check(check_key, aad), check):
            raise KeystoreError(
                f"{path}: wrong passphrase (or the file's header was altered); try again, "
                "or check ARBOT_PASSPHRASE / ARBOT_PASSPHRASE_FILE"
            )
        try:
            plaintext = AESGCM(enc_key).decrypt(nonce, ciphertext, aad)
        except InvalidTag:
            raise KeystoreError(
                f"{path}: the encrypted data was altered or damaged (authentication failed); "
                "restore the file from a backup"
            ) from None
        entries = _parse_entries(plaintext, path)
        store = cls(path, passphrase, entries, kdf)
        store._keys = (enc_key, check_key)
        for credentials in entries.values():
            credentials.register()
        return store

    def save(self) -> None:
        """Encrypt and write atomically (temp file, fsync, rename), mode 0600."""
        if self._keys is None:
            self._keys = self._kdf.derive(self._passphrase)
        enc_key, check_key = self._keys
        nonce = secrets.token_bytes(12)
        kdf_header = self._kdf.header()
        cipher_header = {"name": "aes-256-gcm", "nonce": _b64(nonce)}
        aad = _aad(kdf_header, cipher_header)
        plaintext = json.dumps(
            {"venues": {name: c.to_json() for name, c in sorted(self._entries.items())}},
            separators=(",", ":"),
        ).encode()
        envelope = {
            "format": FORMAT,
            "version": VERSION,
            "kdf": kdf_header,
            "cipher": cipher_header,
            "check": _b64(_check(check_key, aad)),
            "ciphertext": _b64(AESGCM(enc_key).encrypt(nonce, plaintext, aad)),
        }
        data = (json.dumps(envelope, indent=2) + "\n").encode()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(self.path, data, mode=0o600)
        except OSError as exc:
            raise KeystoreError(
                f"{self.path}: cannot write: {exc.strerror}; check the folder"
            ) from None

    def change_passphrase(self, new: SecretStr) -> None:
        """Re-encrypt under ``new`` with a fresh salt (written by :meth:`save`)."""
        check_passphrase_strength(new)
        register_secret(new.get_secret_value())
        self._passphrase = new
        self._kdf = _Kdf(secrets.token_bytes(16), n=self._kdf.n, r=self._kdf.r, p=self._kdf.p)
        self._keys = None

    # ----- entries ----------------------------------------------------------------------

    def venues(self) -> list[str]:
        return sorted(self._entries)

    def get(self, venue: str) -> Credentials | None:
        return self._entries.get(venue)

    def items(self) -> Iterator[tuple[str, Credentials]]:
        yield from sorted(self._entries.items())

    def add(self, venue: str, credentials: Credentials, *, replace_existing: bool = False) -> None:
        if venue in self._entries and not replace_existing:
            raise KeystoreError(
                f"{venue} already has a key ({self._entries[venue].key_id}); "
                f"rotate it with: arbot keys add {venue} --replace"
            )
        credentials.register()
        if credentials.added_at is None:
            credentials = credentials.model_copy(update={"added_at": datetime.now(UTC)})
        self._entries[venue] = credentials

    def remove(self, venue: str) -> None:
        if venue not in self._entries:
            raise KeystoreError(f"{venue} has no key in {self.path}; see: arbot keys list")
        del self._entries[venue]


def check_passphrase_strength(passphrase: SecretStr) -> None:
    if len(passphrase.get_secret_value()) < MIN_PASSPHRASE_LENGTH:
        raise KeystoreError(
            f"the passphrase is too short; use at least {MIN_PASSPHRASE_LENGTH} characters"
        )


def _read_envelope(path: Path) -> dict[str, Any]:
    try:
        info = path.stat()
    except FileNotFoundError:
        raise KeystoreError(
            f"{path}: no keystore here; create one with: arbot keys add VENUE"
        ) from None
    if stat.S_IMODE(info.st_mode) & 0o077:
        raise KeystoreError(
            f"{path}: readable or writable by group or others (mode "
            f"{stat.S_IMODE(info.st_mode):04o}); run: chmod 600 {path}"
        )
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise KeystoreError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        envelope = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise KeystoreError(
            f"{path}: not a valid keystore (truncated or corrupted); restore it from a backup"
        ) from None
    if not isinstance(envelope, dict) or envelope.get("format") != FORMAT:
        raise KeystoreError(f"{path}: not an arbot keystore; check the keystore setting")
    if envelope.get("version") != VERSION:
        raise KeystoreError(
            f"{path}: keystore version {envelope.get('version')!r} is not supported by this "
            f"arbot (it reads version {VERSION}); upgrade arbot"
        )
    return envelope


def _parse_kdf(envelope: dict[str, Any], path: Path) -> _Kdf:
    kdf = envelope.get("kdf")
    if not isinstance(kdf, dict) or kdf.get("name") != "scrypt":
        raise KeystoreError(
            f"{path}: not a valid keystore (unknown key derivation); restore it from a backup"
        )
    n, r, p = (_int_field(kdf, name, path) for name in ("n", "r", "p"))
    if not (
        MIN_SCRYPT_N <= n <= MAX_SCRYPT_N and n & (n - 1) == 0 and 1 <= r <= 32 and 1 <= p <= 16
    ):
        raise KeystoreError(
            f"{path}: scrypt parameters n={n} r={r} p={p} are outside the accepted range "
            "(a weakened or damaged file); restore it from a backup"
        )
    salt = _unb64(kdf.get("salt"), path, "salt")
    if len(salt) < 16:
        raise KeystoreError(
            f"{path}: not a valid keystore (salt too short); restore it from a backup"
        )
    return _Kdf(salt, n, r, p)


def _int_field(kdf: dict[str, Any], name: str, path: Path) -> int:
    value = kdf.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise KeystoreError(
            f"{path}: not a valid keystore (bad scrypt parameter {name}); restore it from a backup"
        )
    return value


def _parse_entries(plaintext: bytes, path: Path) -> dict[str, Credentials]:
    try:
        document = json.loads(plaintext)
        venues = document["venues"]
        if not isinstance(venues, dict):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise KeystoreError(
            f"{path}: decrypted data is not a keystore; restore it from a backup"
        ) from None
    try:
        return {
            name: Credentials.from_json(data, f"{path} [{name}]") for name, data in venues.items()
        }
    except CredentialsError as exc:
        raise KeystoreError(str(exc)) from None
