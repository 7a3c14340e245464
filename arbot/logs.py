"""Logging through loguru: readable on a terminal, JSON lines in production, secrets masked.

Masking happens on the *final* text each sink writes (message, exception and all),
so a secret that slips into an exception message or a repr is still replaced by
``***``. Loguru's ``diagnose`` (which prints local variables in tracebacks) is off
for the same reason.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from arbot.redact import redact

if TYPE_CHECKING:
    from loguru import Message

HUMAN_FORMAT = (
    "<green>{time:YYYY-MM-DD HH:mm:ss.SSS}</green> <level>{level: <7}</level> "
    "<cyan>{name}</cyan> {message}"
)

_open_files: list[TextIO] = []


class MaskingSink:
    """Writes loguru's formatted records to a stream after masking registered secrets."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, message: Message) -> None:
        self.stream.write(redact(str(message)))
        self.stream.flush()


def configure_logging(
    level: str = "INFO",
    json_lines: bool = False,
    file: Path | None = None,
    stream: TextIO | None = None,
    quiet: Mapping[str, str] | None = None,
) -> None:
    """Replace every loguru handler with arbot's: one on stderr, optionally one file.

    ``quiet``: a higher minimum level for some modules (``{"arbot.engine.executor":
    "ERROR"}``): what is news in a daemon can be noise elsewhere.
    """
    from loguru import logger

    logger.remove()
    while _open_files:
        _open_files.pop().close()
    target = stream if stream is not None else sys.stderr
    sinks: list[tuple[TextIO, bool]] = [(target, not json_lines and target.isatty())]
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        handle = file.open("a", encoding="utf-8")
        _open_files.append(handle)
        sinks.append((handle, False))
    levels: dict[str | None, str | int | bool] = {}
    for module, minimum in (quiet or {}).items():
        levels[module] = minimum
    for sink_stream, colorize in sinks:
        logger.add(
            MaskingSink(sink_stream).write,
            level=level,
            format=HUMAN_FORMAT,
            serialize=json_lines,
            colorize=colorize,
            backtrace=False,
            diagnose=False,
            filter=levels or None,
        )
