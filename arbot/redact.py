"""One registry of secret values, and the function that masks them in any text.

Every secret the process learns (API secrets, passphrases, database passwords) is
registered here once; loggers and error printers call :func:`redact` on their final
text, so a secret that leaks into an exception message or a repr is still masked.
"""

from __future__ import annotations

import re
import threading

MASK = "***"
# Shorter values would mask ordinary words; real credentials are far longer.
MIN_SECRET_LENGTH = 4

_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None


def register_secret(value: str | None) -> None:
    """Mask ``value`` wherever it appears in logs and error messages from now on."""
    global _pattern
    if not value or len(value) < MIN_SECRET_LENGTH:
        return
    with _lock:
        if value in _secrets:
            return
        _secrets.add(value)
        # Longest first, so a secret that contains another is masked whole.
        ordered = sorted(_secrets, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(s) for s in ordered))


def redact(text: str) -> str:
    """Return ``text`` with every registered secret replaced by ``***``."""
    pattern = _pattern
    if pattern is None:
        return text
    return pattern.sub(MASK, text)


def forget_all_secrets() -> None:
    """Clear the registry (tests use this to start from a known state)."""
    global _pattern
    with _lock:
        _secrets.clear()
        _pattern = None


def mask_url_password(url: str) -> str:
    """``scheme://user:pw@host/db`` → ``scheme://user:***@host/db``; other URLs unchanged."""
    return re.sub(r"^([a-zA-Z][\w+.-]*://[^:/@]*):[^@/]*@", rf"\1:{MASK}@", url)


def url_password(url: str) -> str | None:
    """The password part of a URL's userinfo, if any (so it can be registered)."""
    match = re.match(r"^[a-zA-Z][\w+.-]*://[^:/@]*:([^@/]*)@", url)
    return match.group(1) if match else None
