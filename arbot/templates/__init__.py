"""Files that ``arbot init`` writes.

``arbot.example.toml`` here is the one documented settings file: ``config/arbot.example.toml``
in the source tree is a link to it, so the example a user reads and the file
``arbot init`` writes cannot drift apart, and the wheel carries it as package data.
"""

from __future__ import annotations

from importlib.resources import files


def starter_config() -> str:
    """The documented example settings, valid as they are (paper mode, simulator venues)."""
    return (files("arbot.templates") / "arbot.example.toml").read_text(encoding="utf-8")
