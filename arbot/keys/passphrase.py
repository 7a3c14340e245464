"""Where the keystore passphrase comes from — never from a command-line argument.

In order: ``ARBOT_PASSPHRASE_FILE`` (a file, e.g. a systemd credential under
``$CREDENTIALS_DIRECTORY``), ``ARBOT_PASSPHRASE``, then an interactive prompt with no
echo when standard input is a terminal. A new passphrase (``arbot keys passwd``) comes
from ``ARBOT_NEW_PASSPHRASE_FILE`` / ``ARBOT_NEW_PASSPHRASE`` or is asked twice.
"""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path

from pydantic import SecretStr

from arbot.errors import ArbotError
from arbot.redact import register_secret


class PassphraseError(ArbotError):
    """No passphrase could be obtained, or the two entries did not match."""


def _from_environment(prefix: str) -> SecretStr | None:
    file_name = os.environ.get(f"{prefix}_FILE")
    if file_name:
        path = Path(file_name)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise PassphraseError(f"{prefix}_FILE={path}: cannot read: {exc.strerror}") from None
        value = text[:-1] if text.endswith("\n") else text
        value = value[:-1] if value.endswith("\r") else value
        if not value:
            raise PassphraseError(f"{prefix}_FILE={path}: the file is empty")
        return SecretStr(value)
    plain = os.environ.get(prefix)
    if plain is not None:
        if not plain:
            raise PassphraseError(f"{prefix} is set but empty")
        return SecretStr(plain)
    return None


def read_passphrase(*, new_keystore: bool = False) -> SecretStr:
    """The keystore passphrase; asked twice when it will protect a new keystore."""
    found = _from_environment("ARBOT_PASSPHRASE")
    if found is None:
        found = _prompt("keystore passphrase: ", confirm=new_keystore)
    register_secret(found.get_secret_value())
    return found


def read_new_passphrase() -> SecretStr:
    """The passphrase ``arbot keys passwd`` re-encrypts under."""
    found = _from_environment("ARBOT_NEW_PASSPHRASE")
    if found is None:
        found = _prompt("new keystore passphrase: ", confirm=True)
    register_secret(found.get_secret_value())
    return found


def _prompt(question: str, *, confirm: bool) -> SecretStr:
    if not sys.stdin.isatty():
        raise PassphraseError(
            "no passphrase: set ARBOT_PASSPHRASE_FILE (preferred) or ARBOT_PASSPHRASE, or run "
            "on a terminal to be asked"
        )
    try:
        first = getpass.getpass(question)
        if confirm and getpass.getpass("again: ") != first:
            raise PassphraseError("the two passphrases differ; nothing was changed")
    except EOFError:
        raise PassphraseError("no passphrase entered; nothing was changed") from None
    if not first:
        raise PassphraseError("empty passphrase; nothing was changed")
    return SecretStr(first)
