"""The engine: risk, execution, journal, reconciliation, portfolio.

Modules are imported where they are used (nothing is re-exported here), so importing
one part of the engine does not pull in the others:

* :mod:`arbot.engine.risk` (with :mod:`arbot.engine.kill_switch`) — approve or reject
  each opportunity with a named reason.
* :mod:`arbot.engine.executor` — send an opportunity's legs, follow fills, unwind uneven
  fills within a loss bound, record the outcome and realised PnL.
* :mod:`arbot.engine.journal` — typed writer/reader of runs, opportunities, orders and
  fills in the store (``pending`` committed before an order is sent).
* :mod:`arbot.engine.ids` — client order ids, unique and deterministic per leg.
* :mod:`arbot.engine.reconcile` — on start, settle the journal against the venues.
* :mod:`arbot.engine.portfolio` — balances per venue from fills and exchange snapshots.
"""
