"""Venue failures in arbot's own terms (ccxt's are translated in ``CcxtVenue`` only).

::

    VenueError                  the venue refused or failed; not retried blindly
    ├── OrderRejected           the venue refused an order (funds, filters, price limits)
    ├── OrderNotFound           the venue does not know the order asked for (fetch, cancel)
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


class OrderNotFound(VenueError):
    """The venue has no such order (by exchange id or client order id).

    Not an :class:`OrderRejected`: nothing was refused. Reconciliation relies on it to
    tell "never reached the venue" from "could not ask" (:class:`VenueUnavailable`).
    """


class BookGap(VenueError):
    """The local book missed an update (sequence gap or checksum): take a new snapshot."""


class VenueUnavailable(VenueError):
    """A transient failure: the connection dropped, timed out, or the venue is busy."""


class RateLimited(VenueUnavailable):
    """The venue asked us to slow down."""
