"""The metrics the dashboard and the alerts need: the oldest pending event's age, vendor pauses
(gauge and counter), per-vendor write latency, and which vendors the receiver is configured for."""

from __future__ import annotations

from pathlib import Path

from connectors.base import Envelope, RateLimited
from tests.webhooks.conftest import FakeClock
from tests.webhooks.fakes import FakeConnector, fake_decide
from tiering.policy import load_policy
from webhooks.defaults import EXAMPLE_POLICY_SOURCE, default_policy_text
from webhooks.inbox.store import Inbox
from webhooks.metrics import Metrics
from webhooks.worker import Worker


def _put(inbox: Inbox, delivery: str, *, labels: tuple[str, ...] = ()) -> None:
    inbox.enqueue(Envelope(vendor="jira", event_type="jira:issue_updated", handled=True,
                           ticket="T-1", delivery_id=delivery, actor="agent"),
                  {"ticket": "T-1", "seq": 1, "labels": list(labels)})


def _worker(inbox: Inbox, fake: FakeConnector, metrics: Metrics) -> Worker:
    text, source = default_policy_text(), EXAMPLE_POLICY_SOURCE
    return Worker(inbox=inbox, connectors={"jira": fake}, policy=load_policy(text, source=source),
                  decide=fake_decide, max_attempts=8, lease_seconds=60, retry_max_delay=600,
                  metrics=metrics)


def test_oldest_pending_age_and_pause_are_read_at_scrape(tmp_path: Path) -> None:
    """Age of the oldest pending event per vendor, and the seconds a paused vendor stays
    paused (0 for a configured vendor that is not paused), come from the database."""
    clock = FakeClock()
    inbox = Inbox.connect(f"sqlite:///{tmp_path}/m.db", clock=clock)
    metrics = Metrics()
    metrics.watch_inbox(inbox.depth, vendors=("jira", "zendesk"))
    _put(inbox, "d1")
    clock.advance(100)
    _put(inbox, "d2")
    inbox.pause_vendor("zendesk", until=clock() + 30, reason="429")
    value = metrics.registry.get_sample_value
    assert value("tierdesk_inbox_oldest_pending_age_seconds", {"vendor": "jira"}) == 100
    assert value("tierdesk_inbox_oldest_pending_age_seconds", {"vendor": "zendesk"}) is None
    assert value("tierdesk_vendor_paused_seconds", {"vendor": "zendesk"}) == 30
    assert value("tierdesk_vendor_paused_seconds", {"vendor": "jira"}) == 0
    clock.advance(31)
    assert value("tierdesk_vendor_paused_seconds", {"vendor": "zendesk"}) == 0
    inbox.close()


def test_retry_after_counts_a_pause_and_a_write_its_latency(tmp_path: Path) -> None:
    """A 429 with Retry-After counts one vendor pause; the write that follows is observed in
    the write-latency histogram (once: a decision that writes nothing is not)."""
    clock = FakeClock()
    inbox = Inbox.connect(f"sqlite:///{tmp_path}/m.db", clock=clock)
    metrics = Metrics()
    fake = FakeConnector(errors=[RateLimited("slow down", retry_after=60)])
    worker = _worker(inbox, fake, metrics)
    _put(inbox, "d1")
    worker.drain()
    clock.advance(61)
    worker.drain()
    _put(inbox, "d2", labels=("tier-l1",))  # the vendor shows our label: nothing to write
    worker.drain()
    value = metrics.registry.get_sample_value
    assert value("tierdesk_vendor_pauses_total", {"vendor": "jira"}) == 1
    assert value("tierdesk_vendor_write_seconds_count", {"vendor": "jira"}) == 1
    assert len(fake.applied) == 1
    inbox.close()


def test_receiver_reports_configured_vendors(tmp_path: Path, monkeypatch: object) -> None:
    """`serve` sets tierdesk_vendor_configured for each configured vendor only."""
    import pytest

    from webhooks.service import build_server
    from webhooks.settings import load_settings

    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    monkeypatch.chdir(tmp_path)
    settings = load_settings(
        database_url=f"sqlite:///{tmp_path}/c.db", zendesk_subdomain="acme",
        zendesk_email="bot@acme.example", zendesk_api_token="t", jira_url=None,
    )
    _server, service = build_server(settings, with_worker=False)
    value = service.metrics.registry.get_sample_value
    assert value("tierdesk_vendor_configured", {"vendor": "zendesk"}) == 1
    assert value("tierdesk_vendor_configured", {"vendor": "jira"}) is None
    service.inbox.close()
