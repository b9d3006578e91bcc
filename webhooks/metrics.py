"""Prometheus metrics of the receiver and the worker, in one registry per process.

Counters (received, duplicates, ignored, rejected by reason, decisions by outcome, vendor calls
by status, dead-lettered, vendor pauses) and histograms (ingest and processing latency, vendor
write latency) count what this process did; with `serve --no-worker` plus `tierdesk worker`, the
worker's figures live in the worker process and its decision records. The inbox gauges (pending
events and the oldest one's age per vendor, ready tickets, dead letters, seconds a vendor stays
paused) are read from the database at scrape time, so every replica reports the shared figure.
`tierdesk_vendor_configured` is set by the receiver (`serve`) for each configured vendor.
SLA (issue 18): warnings and breaches acted on by clock, the timer lag (due instant to the
decision that acted on it) and, read at scrape time, the open clocks per vendor.
They start at 0 for each vendor a worker of this process serves (`serve_sla`).
deploy/observability/ holds the Grafana dashboard and the alert rules built on these.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import get_args

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from tiering.sla_models import Clock
from webhooks.inbox.records import Depth

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _InboxCollector(Collector):
    """Reads the inbox depth when Prometheus scrapes."""

    def __init__(self, depth: Callable[[], Depth], vendors: Sequence[str] = ()) -> None:
        self._depth = depth
        self._vendors = tuple(vendors)

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
        age = GaugeMetricFamily(
            "tierdesk_inbox_oldest_pending_age_seconds",
            "Seconds since the oldest pending event was received", labels=["vendor"],
        )
        for vendor, seconds in sorted(depth.oldest_pending_age.items()):
            age.add_metric([vendor], seconds)
        yield age
        paused = GaugeMetricFamily(
            "tierdesk_vendor_paused_seconds",
            "Seconds a vendor stays paused after it asked to wait (Retry-After); 0 when not",
            labels=["vendor"],
        )
        for vendor in sorted(set(self._vendors) | set(depth.paused_for)):
            paused.add_metric([vendor], max(0.0, depth.paused_for.get(vendor, 0.0)))
        yield paused
        yield GaugeMetricFamily(
            "tierdesk_inbox_ready_tickets", "Tickets whose events may be processed now",
            value=depth.ready_tickets,
        )
        yield GaugeMetricFamily(
            "tierdesk_dead_letters", "Events given up on (see `tierdesk dead-letters list`)",
            value=depth.dead_letters,
        )


class _ClockCollector(Collector):
    """Reads the open SLA clocks per vendor when Prometheus scrapes."""

    def __init__(self, count: Callable[[], dict[str, int]]) -> None:
        self._count = count

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            counts = self._count()
        except Exception:  # the database is down: /readyz says so
            return
        family = GaugeMetricFamily(
            "tierdesk_sla_open_clocks", "SLA/OLA clocks not stopped (tickets not solved)",
            labels=["vendor"],
        )
        for vendor, n in sorted(counts.items()):
            family.add_metric([vendor], n)
        yield family


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
        self.vendor_pauses = Counter(
            "tierdesk_vendor_pauses", "Times a vendor asked tierdesk to wait (429/503 with"
            " Retry-After) and its work was paused", ["vendor"], registry=r,
        )
        self.write_latency = Histogram(
            "tierdesk_vendor_write_seconds", "Time to apply one decision that wrote to the vendor"
            " (its requests, including reads made to plan the write)", ["vendor"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60), registry=r,
        )
        self.vendor_configured = Gauge(
            "tierdesk_vendor_configured", "1 for each vendor this receiver is configured for"
            " (alerts: no webhook received while configured)", ["vendor"], registry=r,
        )
        self.configuration_refusals = Counter(
            "tierdesk_configuration_refusals",
            "Writes or reads the vendor refused for a configuration reason (credentials,"
            " permission, unknown-target, field, comment-visibility)",
            ["vendor", "reason"], registry=r,
        )

        self.sla_warnings = Counter(
            "tierdesk_sla_warnings", "SLA warning thresholds acted on", ["vendor", "clock"],
            registry=r,
        )
        self.sla_breaches = Counter(
            "tierdesk_sla_breaches", "SLA breaches acted on", ["vendor", "clock"], registry=r,
        )
        self.sla_timer_rearms = Counter(
            "tierdesk_sla_timer_rearms",
            "SLA timers re-armed (with backoff) because the ticket's due event became a dead"
            " letter", ["vendor"], registry=r,
        )
        self.sla_timer_lag = Histogram(
            "tierdesk_sla_timer_lag_seconds",
            "Due instant of an SLA timer to the decision that acted on it",
            ["vendor"], buckets=(0.05, 0.1, 0.25, 0.5, 0.75, 1, 2, 5, 10, 30, 60, 300),
            registry=r,
        )

    def serve_sla(self, vendors: Iterable[str]) -> None:
        """Start the SLA counters (every clock) and the timer lag at 0 for each vendor this
        process's workers serve: the alert rules' `increase()` then sees the first warning or
        breach (a series that appears at 1 shows no increase), and the dashboard shows 0."""
        for vendor in vendors:
            for clock in get_args(Clock):
                self.sla_warnings.labels(vendor, clock)
                self.sla_breaches.labels(vendor, clock)
            self.sla_timer_lag.labels(vendor)

    def watch_clocks(self, count: Callable[[], dict[str, int]]) -> None:
        """Report the open SLA clocks per vendor (`Inbox.open_clock_count`) at scrape time."""
        self.registry.register(_ClockCollector(count))

    def watch_inbox(self, depth: Callable[[], Depth], *, vendors: Sequence[str] = ()) -> None:
        """Report the inbox depth (pending events and the oldest one's age, ready tickets,
        dead letters, vendor pauses) at scrape time; `vendors` always get a pause figure."""
        self.registry.register(_InboxCollector(depth, vendors))

    def render(self) -> bytes:
        return generate_latest(self.registry)
