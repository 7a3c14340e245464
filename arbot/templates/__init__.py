"""Files that ``arbot init`` writes.

The starter settings file is ``config/arbot.example.toml`` of the source tree, shipped
inside the wheel as ``arbot/templates/arbot.example.toml``: one file, so the example a
user reads and the file ``arbot init`` writes cannot drift apart.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

_NAME = "arbot.example.toml"


def starter_config() -> str:
    """The documented example settings, valid as they are (paper mode, simulator venues)."""
    packaged = files("arbot.templates") / _NAME
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    source_tree = Path(__file__).resolve().parents[2] / "config" / _NAME
    return source_tree.read_text(encoding="utf-8")
