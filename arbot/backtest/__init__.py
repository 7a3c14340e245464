"""``arbot backtest``: the daemon's engine on replayed books (see ``docs/backtest.md``).

* :mod:`~arbot.backtest.clock`: the replay clock, the venues' event queue, and the
  asyncio loop on replay time that never waits for the wall clock;
* :mod:`~arbot.backtest.replay`: a dataset as *moments* (updates visible at one
  instant), with per-venue market-data latency;
* :mod:`~arbot.backtest.latency`: constant or seeded random latencies;
* :mod:`~arbot.backtest.markets`: market grids from the settings or the data;
* :mod:`~arbot.backtest.venue`: ``BacktestVenue``, a paper account whose orders arrive
  after a latency and fill against the book at arrival;
* :mod:`~arbot.backtest.journal`: the journal, written in bulk;
* :mod:`~arbot.backtest.runner`: ``Backtest``, which builds the engine and drives it;
* :mod:`~arbot.backtest.results`: ``summary.json``, ``trades.csv``, ``report.html``.
"""
