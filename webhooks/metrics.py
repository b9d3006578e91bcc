"""Prometheus metrics of the receiver and the worker, in one registry per process.

Counters (received, duplicates, ignored, rejected by reason, decisions by outcome, vendor calls
by status, dead-lettered) and histograms (ingest and processing latency) count what this process
did; with `serve --no-worker` plus `tierdesk worker`, the worker's figures live in the worker
process and its decision records. The inbox gauges (pending events per vendor, ready tickets,
dead letters) are read from the database at scrape time, so every replica reports the shared
figure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from webhooks.inbox import Depth

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _InboxCollector(Collector):
    """Reads the inbox depth when Prometheus scrapes."""

    def __init__(self, depth: Callable[[], Depth]) -> None:
        self._depth = depth

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            depth = self._depth()
        except Exception:  # the database is down: /readyz says so; emit nothing here
            return
        pending = GaugeMetricFamily(
            "tierdesk_inbox_pending_events", "Events waiting to be processed", labels=["vendor"]
        )
        for vendor, n in sorted(depth.by_vendor.items()):
            pending.add_metric([vendor], n)
        yield pending
        yield GaugeMetricFamily(
            "tierdesk_inbox_ready_tickets", "Tickets whose events may be processed now",
            value=depth.ready_tickets,
        )
        yield GaugeMetricFamily(
            "tierdesk_dead_letters", "Events given up on (see `tierdesk dead-letters list`)",
            value=depth.dead_letters,
        )


class Metrics:
    """The counters and histograms; `render()` is the /metrics body."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.received = Counter(
            "tierdesk_webhooks_received", "Deliveries stored (new)", ["vendor"], registry=r
        )
        self.duplicates = Counter(
            "tierdesk_webhooks_duplicates", "Deliveries already stored", ["vendor"], registry=r
        )
        self.ignored = Counter(
            "tierdesk_webhooks_ignored", "Known events tierdesk does not act on",
            ["vendor", "event_type"], registry=r,
        )
        self.rejected = Counter(
            "tierdesk_webhooks_rejected", "Deliveries refused", ["vendor", "reason"], registry=r
        )
        self.ingest_latency = Histogram(
            "tierdesk_ingest_seconds", "Receipt to commit of one delivery", ["vendor"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0), registry=r,
        )
        self.processing_latency = Histogram(
            "tierdesk_processing_seconds", "Receipt of the oldest coalesced event to its decision",
            ["vendor"], buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900),
            registry=r,
        )
        self.decisions = Counter(
            "tierdesk_decisions", "Evaluations by outcome", ["vendor", "outcome"], registry=r
        )
        self.vendor_calls = Counter(
            "tierdesk_vendor_calls", "Requests made to a vendor", ["vendor", "status"], registry=r
        )
        self.dead_lettered = Counter(
            "tierdesk_dead_lettered", "Events that became dead letters", ["vendor"], registry=r
        )
        self.configuration_refusals = Counter(
            "tierdesk_configuration_refusals",
            "Writes or reads the vendor refused for a configuration reason (credentials,"
            " permission, unknown-target, field, comment-visibility)",
            ["vendor", "reason"], registry=r,
        )

    def watch_inbox(self, depth: Callable[[], Depth]) -> None:
        """Report the inbox depth (pending events, ready tickets, dead letters) at scrape time."""
        self.registry.register(_InboxCollector(depth))

    def render(self) -> bytes:
        return generate_latest(self.registry)
