"""Helpers for testing against arbot's exchange simulator, for us and for strategy authors.

Use the fixtures by adding ``pytest_plugins = ["arbot.testing.plugin"]`` to a
``conftest.py`` (arbot's own suite does). They need pytest-asyncio (``arbot[test]``).
"""

from __future__ import annotations

from arbot.testing.sim import (
    ccxt_client,
    ccxt_client_config,
    running_simulator,
    sim_venue_config,
)

__all__ = ["ccxt_client", "ccxt_client_config", "running_simulator", "sim_venue_config"]
