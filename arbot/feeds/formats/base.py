"""What every recorded-format reader yields: :class:`RawBook` events, or one-line errors."""

from __future__ import annotations

from dataclasses import dataclass

from arbot.errors import ArbotError

PlainLevel = tuple[str, str]
"""``(price, amount)`` as the file wrote them: plain decimal strings; amount ``0`` removes."""


class RecordingError(ArbotError):
    """A recorded file cannot be used; the message is one line naming file and line."""


@dataclass(slots=True)
class RawBook:
    """One book event of a recording, before any conversion.

    ``replace`` marks a full snapshot (levels not listed are gone); otherwise the levels
    are changes (amount ``0`` removes a level). ``source`` is ``FILE:LINE`` of the line
    that completed the event.
    """

    time_ns: int
    source: str
    venue: str
    symbol: str
    replace: bool
    bids: list[PlainLevel]
    asks: list[PlainLevel]
    exchange_ms: int | None = None
    update_id: int | None = None
    ordered: bool = False
    """Levels are checked best first and strictly ordered, with no zero amounts."""
