"""Venue failures in arbot's own terms (ccxt's are translated in ``CcxtVenue`` only).

::

    VenueError                  the venue refused or failed; not retried blindly
    ├── OrderRejected           the venue refused an order (funds, filters, price limits)
    ├── BookGap                 a book stream lost a message: resynchronise now
    └── VenueUnavailable        network, timeout, maintenance: retry with backoff
        └── RateLimited         429/418: back off longer
"""

from __future__ import annotations

from arbot.errors import ArbotError


class VenueError(ArbotError):
    def __init__(self, venue: str, message: str) -> None:
        super().__init__(f"{venue}: {message}")
        self.venue = venue


class OrderRejected(VenueError):
    """The venue refused an order; the message says why (insufficient funds, filters...)."""


class BookGap(VenueError):
    """The local book missed an update (sequence gap or checksum): take a new snapshot."""


class VenueUnavailable(VenueError):
    """A transient failure: the connection dropped, timed out, or the venue is busy."""


class RateLimited(VenueUnavailable):
    """The venue asked us to slow down."""
