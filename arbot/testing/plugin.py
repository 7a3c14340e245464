"""pytest fixtures: ``sim`` (a running simulator) and ``frozen_sim`` (books move only on
``server.step``). Enable with ``pytest_plugins = ["arbot.testing.plugin"]``.

Both fail the test at teardown if the simulator received any withdraw or transfer
request, unless the test is marked ``@pytest.mark.sim_withdrawals_expected`` (only tests
of the simulator itself, calling ccxt directly, should be): arbot must never send one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from arbot.sim.server import SimServer
from arbot.testing.sim import running_simulator

MARK = "sim_withdrawals_expected"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARK}: the test itself sends withdraw/transfer requests to the simulator"
    )


def _no_withdrawals(server: SimServer, request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker(MARK) is not None:
        return
    attempts = [(w.venue, w.kind) for v in server.venues.values() for w in v.withdrawals]
    if attempts:
        pytest.fail(f"the simulator received withdraw/transfer requests: {attempts}", pytrace=False)


@pytest_asyncio.fixture
async def sim(request: pytest.FixtureRequest) -> AsyncIterator[SimServer]:
    """The default simulator (binance + okx venues) on a free port, makers running."""
    async with running_simulator() as server:
        yield server
        _no_withdrawals(server, request)


@pytest_asyncio.fixture
async def frozen_sim(request: pytest.FixtureRequest) -> AsyncIterator[SimServer]:
    """The default simulator with the makers stopped: call ``server.step(venue)``."""
    async with running_simulator(updates_per_second=0) as server:
        yield server
        _no_withdrawals(server, request)
