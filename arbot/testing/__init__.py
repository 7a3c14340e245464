"""Helpers for testing against arbot's exchange simulator, and for testing strategy plugins.

Strategy authors: :func:`book_update`, :func:`market`, :func:`run_strategy` (or a
:class:`StrategyHarness`), :func:`assert_valid_opportunity`, :func:`load_plugin`, and
:func:`run_on_simulator` for live books from the simulator; see ``docs/strategies.md``.

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
from arbot.testing.strategy import (
    ManualClock,
    StrategyHarness,
    assert_valid_opportunity,
    book_update,
    load_plugin,
    market,
    opportunity_problems,
    run_on_simulator,
    run_strategy,
)

__all__ = [
    "ManualClock",
    "StrategyHarness",
    "assert_valid_opportunity",
    "book_update",
    "ccxt_client",
    "ccxt_client_config",
    "load_plugin",
    "market",
    "opportunity_problems",
    "run_on_simulator",
    "run_strategy",
    "running_simulator",
    "sim_venue_config",
]
