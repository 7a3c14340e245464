"""Errors a user can cause or fix, rooted at :class:`ArbotError`.

::

    ArbotError                 a problem the operator can fix; the CLI prints one line, exit 2
    ├── ConfigError            the settings file or environment is invalid
    └── StoreError             the database cannot be opened, or its schema is not ours

Anything else that escapes is a bug and keeps its traceback. Messages never contain
secrets: they pass through :func:`arbot.redact.redact` before they are shown.
"""

from __future__ import annotations


class ArbotError(Exception):
    """A user-facing failure with a one-line message that names the problem and the fix."""

    exit_code: int = 2


class ConfigError(ArbotError):
    """The configuration (file or ``ARBOT_*`` environment) is missing or invalid."""


class StoreError(ArbotError):
    """The database is unreachable, or holds a schema this version cannot use."""
