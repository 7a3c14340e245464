"""Prometheus metrics, collected from the status snapshot at scrape time.

A custom collector instead of counters bumped on the hot path: the feeds and the
engine already count everything, so a scrape reads those counters once and the
per-update cost of metrics is zero.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from arbot.ops.status import StatusSource, health

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class StatusCollector(Collector):
    def __init__(self, source: StatusSource) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        status = self.source.status()
        feed_labels = ["venue", "symbol"]
        updates = CounterMetricFamily(
            "arbot_book_updates", "Book updates received.", labels=feed_labels
        )
        rate = GaugeMetricFamily(
            "arbot_book_updates_per_second",
            "Book updates per second since start.",
            labels=feed_labels,
        )
        age = GaugeMetricFamily(
            "arbot_book_age_seconds", "Age of the latest book.", labels=feed_labels
        )
        stale = GaugeMetricFamily(
            "arbot_book_stale", "1 when the book is older than max_book_age_ms.", labels=feed_labels
        )
        gaps = CounterMetricFamily(
            "arbot_book_gaps", "Sequence gaps resynchronised.", labels=feed_labels
        )
        reconnects = CounterMetricFamily(
            "arbot_feed_reconnects", "Stream reconnects.", labels=feed_labels
        )
        stalls = CounterMetricFamily(
            "arbot_feed_stalls", "Silent streams detected.", labels=feed_labels
        )
        latency = GaugeMetricFamily(
            "arbot_feed_latency_seconds",
            "Exchange to local latency of the latest update.",
            labels=feed_labels,
        )
        for feed in status["feeds"]:
            labels = [feed["venue"], feed["symbol"]]
            updates.add_metric(labels, feed["updates"])
            rate.add_metric(labels, feed["updates_per_s"])
            if feed["age_ms"] is not None:
                age.add_metric(labels, feed["age_ms"] / 1000.0)
            stale.add_metric(labels, 1.0 if feed["stale"] else 0.0)
            gaps.add_metric(labels, feed["gaps"])
            reconnects.add_metric(labels, feed["reconnects"])
            stalls.add_metric(labels, feed["stalls"])
            if feed["latency_ms"] is not None:
                latency.add_metric(labels, feed["latency_ms"] / 1000.0)
        yield from (updates, rate, age, stale, gaps, reconnects, stalls, latency)

        backoffs = CounterMetricFamily(
            "arbot_rate_limit_backoffs", "429/418 answers backed off.", labels=["venue"]
        )
        for venue, count in sorted(status["rate_limit_backoffs"].items()):
            backoffs.add_metric([venue], count)
        yield backoffs

        opportunities = CounterMetricFamily(
            "arbot_opportunities", "Opportunities by what became of them.", labels=["outcome"]
        )
        seen = status["opportunities"]
        for outcome, count in sorted(seen.get("outcomes", {}).items()):
            opportunities.add_metric([outcome], count)
        for reason, count in sorted(seen.get("rejected", {}).items()):
            opportunities.add_metric([f"rejected:{reason}"], count)
        yield opportunities

        orders = CounterMetricFamily(
            "arbot_orders", "Orders sent, by last known status.", labels=["status"]
        )
        for state, count in sorted(status["orders"].items()):
            orders.add_metric([state], count)
        yield orders
        yield CounterMetricFamily("arbot_fills", "Fills recorded.", value=status["fills"])

        pnl = GaugeMetricFamily(
            "arbot_realised_pnl", "Realised PnL since start, in quote.", labels=["quote"]
        )
        for quote, value in sorted(status["pnl_quote"].items()):
            pnl.add_metric([quote], float(Decimal(value)))
        yield pnl

        inventory = GaugeMetricFamily(
            "arbot_inventory",
            "Holdings per venue and asset (free + used).",
            labels=["venue", "asset"],
        )
        for row in status["inventory"]:
            inventory.add_metric(
                [row["venue"], row["asset"]], float(Decimal(row["free"]) + Decimal(row["used"]))
            )
        yield inventory

        ok, _ = health(status)
        yield GaugeMetricFamily(
            "arbot_healthy", "1 when /healthz answers 200.", value=1.0 if ok else 0.0
        )
        yield GaugeMetricFamily(
            "arbot_kill_switch_tripped",
            "1 while the kill switch is tripped.",
            value=1.0 if status["kill_switch"].get("tripped") else 0.0,
        )
        yield GaugeMetricFamily(
            "arbot_uptime_seconds", "Seconds since the daemon started.", value=status["uptime_s"]
        )


def render(source: StatusSource) -> bytes:
    """The Prometheus text exposition of ``source`` (a fresh registry per call: no globals)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StatusCollector(source))
    return generate_latest(registry)
