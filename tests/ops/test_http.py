"""The ops endpoint: health follows the status, metrics parse with Prometheus's own parser."""

from __future__ import annotations

import copy

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from arbot.ops.http import OpsServer
from arbot.ops.status import Status

STATUS: Status = {
    "mode": "paper",
    "run_id": 7,
    "strategy": "cross_exchange",
    "started_at": "2026-11-27T12:00:00+00:00",
    "uptime_s": 12.5,
    "feeds": [
        {
            "venue": "binance",
            "symbol": "BTC/USDT",
            "updates": 1200,
            "updates_per_s": 96.0,
            "age_ms": 12.0,
            "stale": False,
            "gaps": 1,
            "reconnects": 2,
            "stalls": 0,
            "rate_limited": 0,
            "latency_ms": 3.5,
        },
        {
            "venue": "okx",
            "symbol": "BTC/USDT",
            "updates": 900,
            "updates_per_s": 72.0,
            "age_ms": None,
            "stale": False,
            "gaps": 0,
            "reconnects": 0,
            "stalls": 0,
            "rate_limited": 0,
            "latency_ms": None,
        },
    ],
    "keys": {"binance": "trade_only", "okx": "trade_only"},
    "store_writable": True,
    "kill_switch": {"tripped": False, "reason": None},
    "opportunities": {
        "seen": 10,
        "taken": 4,
        "rejected": {"stale_book": 5, "insufficient_balance": 1},
        "outcomes": {"filled": 3, "unwound": 1},
    },
    "orders": {"filled": 7, "canceled": 1},
    "fills": 9,
    "pnl_quote": {"USDT": "12.3456"},
    "inventory": [{"venue": "binance", "asset": "BTC", "free": "0.25", "used": "0.01"}],
    "rate_limit_backoffs": {"binance": 2},
}


class Source:
    def __init__(self, status: Status) -> None:
        self.current = status

    def status(self) -> Status:
        return self.current


async def test_health_metrics_and_status_over_http() -> None:
    source = Source(copy.deepcopy(STATUS))
    server = OpsServer(source, 0)
    port = await server.start()
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/healthz") as response:
                assert response.status == 200
                assert await response.json() == {"ok": True, "problems": []}
            async with http.get(f"{base}/status") as response:
                assert await response.json() == STATUS
            async with http.get(f"{base}/metrics") as response:
                assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
                text = await response.text()
            source.current["feeds"][1]["stale"] = True
            source.current["keys"]["okx"] = "unsafe"
            async with http.get(f"{base}/healthz") as response:
                assert response.status == 503
                body = await response.json()
    finally:
        await server.close()
    assert body["problems"] == [
        "feed okx:BTC/USDT is stale (no update yet)",
        "key for okx is unsafe, not proven trade-only",
    ]
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    feed = (("symbol", "BTC/USDT"), ("venue", "binance"))
    assert samples[("arbot_book_updates_total", feed)] == 1200
    assert samples[("arbot_book_age_seconds", feed)] == 0.012
    assert samples[("arbot_feed_reconnects_total", feed)] == 2
    assert samples[("arbot_opportunities_total", (("outcome", "filled"),))] == 3
    assert samples[("arbot_opportunities_total", (("outcome", "rejected:stale_book"),))] == 5
    assert samples[("arbot_realised_pnl", (("quote", "USDT"),))] == 12.3456
    assert samples[("arbot_inventory", (("asset", "BTC"), ("venue", "binance")))] == 0.26
    assert samples[("arbot_rate_limit_backoffs_total", (("venue", "binance"),))] == 2
    assert samples[("arbot_healthy", ())] == 1.0
    assert ("arbot_book_age_seconds", (("symbol", "BTC/USDT"), ("venue", "okx"))) not in samples
