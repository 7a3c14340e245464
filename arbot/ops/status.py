"""The daemon's status: one JSON-able snapshot that ``/status``, ``/healthz``, ``/metrics``
and ``arbot status`` all read, so they can never disagree.

The engine implements :class:`StatusSource`; the snapshot is built when asked (a scrape
or a request), never on the hot path.
"""

from __future__ import annotations

from typing import Any, Protocol, TypedDict


class FeedStatus(TypedDict):
    venue: str
    symbol: str
    updates: int
    updates_per_s: float
    age_ms: float | None
    stale: bool
    gaps: int
    reconnects: int
    stalls: int
    rate_limited: int
    latency_ms: float | None


class Status(TypedDict):
    """Everything an operator looks at. Money values are decimal strings."""

    mode: str
    run_id: int | None
    strategy: str
    started_at: str
    uptime_s: float
    feeds: list[FeedStatus]
    keys: dict[str, str]  # venue -> verdict (trade_only | unsafe | unverified | error | paper)
    store_writable: bool
    kill_switch: dict[str, Any]  # {"tripped": bool, "reason": str | None}
    opportunities: dict[str, Any]  # {"seen", "taken", "rejected": {reason: n}, "outcomes": {..}}
    orders: dict[str, int]  # by status
    fills: int
    pnl_quote: dict[str, str]  # quote asset -> realised PnL
    inventory: list[dict[str, str]]  # {"venue", "asset", "free", "used"}
    rate_limit_backoffs: dict[str, int]  # venue -> 429/418 answers backed off


class StatusSource(Protocol):
    def status(self) -> Status: ...


def health(status: Status) -> tuple[bool, list[str]]:
    """Healthy = every feed fresh, every key proven trade-only (paper: no keys), store writable."""
    problems = [
        f"feed {f['venue']}:{f['symbol']} is stale ({_age(f['age_ms'])})"
        for f in status["feeds"]
        if f["stale"]
    ]
    problems += [
        f"key for {venue} is {verdict}, not proven trade-only"
        for venue, verdict in sorted(status["keys"].items())
        if verdict not in ("trade_only", "paper")
    ]
    if not status["store_writable"]:
        problems.append("the store is not writable")
    return not problems, problems


def _age(age_ms: float | None) -> str:
    return "no update yet" if age_ms is None else f"{age_ms:.0f} ms old"
