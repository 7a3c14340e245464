"""pytest fixtures: ``sim`` (a running simulator) and ``frozen_sim`` (books move only on
``server.step``). Enable with ``pytest_plugins = ["arbot.testing.plugin"]``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from arbot.sim.server import SimServer
from arbot.testing.sim import running_simulator


@pytest_asyncio.fixture
async def sim() -> AsyncIterator[SimServer]:
    """The default simulator (binance + okx venues) on a free port, makers running."""
    async with running_simulator() as server:
        yield server


@pytest_asyncio.fixture
async def frozen_sim() -> AsyncIterator[SimServer]:
    """The default simulator with the makers stopped: call ``server.step(venue)``."""
    async with running_simulator(updates_per_second=0) as server:
        yield server
