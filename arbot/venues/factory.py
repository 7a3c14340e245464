"""Building the ccxt object for a venue: the guarded class, credentials, endpoint or sandbox."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from arbot.venues.endpoints import point_at
from arbot.venues.guard import guarded_class

if TYPE_CHECKING:
    from arbot.config import VenueConfig
    from arbot.keys.credentials import Credentials


def build_exchange(
    venue: str, config: VenueConfig, credentials: Credentials | None, *, websocket: bool = True
) -> Any:
    """A ccxt (``ccxt.pro`` when ``websocket`` and ccxt.pro has the exchange) exchange
    that cannot withdraw or transfer.

    With an ``endpoint`` every URL points there (verified). ccxt's own rate limiter is
    off: every REST call goes through the venue's :class:`~arbot.venues.rest.RestGate`.
    """
    import ccxt.async_support as rest_only

    cls = getattr(rest_only, config.exchange)
    if websocket:
        from ccxt import pro

        cls = getattr(pro, config.exchange, cls)  # REST-only exchanges are polled
    settings: dict[str, Any] = {"enableRateLimit": False, "timeout": 10_000}
    if credentials is not None:
        settings.update(credentials.ccxt_config())
    exchange = guarded_class(cls)(settings)
    if config.sandbox:
        exchange.set_sandbox_mode(True)
    if config.endpoint:
        point_at(exchange, config.exchange, config.endpoint, venue)
    return exchange
