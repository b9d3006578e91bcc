"""Retention: the worker pool's hourly Pruner and `tierdesk prune`."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from connectors.base import Envelope
from tests.webhooks.conftest import FakeClock
from webhooks.cli import main
from webhooks.inbox.records import Pruned
from webhooks.inbox.store import Inbox
from webhooks.retention import DAY, Pruner
from webhooks.settings import load_settings


def _done(inbox: Inbox, delivery: str) -> None:
    inbox.enqueue(Envelope(vendor="jira", event_type="jira:issue_updated", handled=True,
                           ticket=f"T-{delivery}", delivery_id=delivery), {})
    claim = inbox.claim(lease_seconds=30)
    assert claim is not None
    inbox.complete(claim, record=None)


def test_pruner_keeps_the_retention(inbox: Inbox, clock: FakeClock) -> None:
    """Events received more than `days` ago go; younger ones stay."""
    _done(inbox, "old")
    clock.advance(3 * DAY)
    _done(inbox, "young")
    assert Pruner(inbox, days=2).prune_once() == Pruned(events=1, decisions=0)
    assert [e.delivery_id for e in inbox.events_of("jira", "T-young")] == ["young"]
    assert inbox.events_of("jira", "T-old") == []


def test_pruner_runs_until_stopped_and_survives_a_failure(inbox: Inbox) -> None:
    """The loop prunes at its interval, logs and carries on after an error, stops on request."""
    calls: list[str] = []

    class Flaky(Pruner):
        def prune_once(self) -> Pruned:
            calls.append("prune")
            if len(calls) == 1:
                raise RuntimeError("database briefly unavailable")
            return Pruned(events=0, decisions=0)

    stop = threading.Event()
    thread = threading.Thread(target=Flaky(inbox, days=1, interval=0.01, first_after=0.01).run,
                              args=(stop,))
    thread.start()
    deadline = time.monotonic() + 10
    while len(calls) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    thread.join(timeout=5)
    assert len(calls) >= 3 and not thread.is_alive()


def test_zero_days_is_refused_by_the_pruner(inbox: Inbox) -> None:
    with pytest.raises(ValueError, match="more than 0 days"):
        Pruner(inbox, days=0)


def test_retention_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """TIERDESK_RETENTION_DAYS defaults to 30; 0 keeps everything; negative is refused."""
    monkeypatch.delenv("TIERDESK_RETENTION_DAYS", raising=False)
    assert load_settings(_env_file=None).retention_days == 30
    monkeypatch.setenv("TIERDESK_RETENTION_DAYS", "0")
    assert load_settings(_env_file=None).retention_days == 0


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'inbox.db'}"
    monkeypatch.setenv("TIERDESK_DATABASE_URL", url)
    return url


def test_prune_command(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """`tierdesk prune` counts with --dry-run, then deletes; it says what and how old."""
    box = Inbox.connect(db, clock=lambda: time.time() - 40 * DAY)
    _done(box, "a")
    _done(box, "b")
    box.close()
    runner = CliRunner()
    dry = runner.invoke(main, ["prune", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert ("would delete 2 event(s), 0 decision record(s) and 0 finished SLA notice(s) older"
            " than 30 day(s)") in dry.output
    done = runner.invoke(main, ["prune", "--older-than", "45"])
    assert "deleted 0 event(s)" in done.output
    done = runner.invoke(main, ["prune"])
    assert done.exit_code == 0 and "deleted 2 event(s)" in done.output
    monkeypatch.setenv("TIERDESK_RETENTION_DAYS", "0")
    refused = runner.invoke(main, ["prune"])
    assert refused.exit_code != 0 and "give --older-than DAYS" in refused.output


@pytest.mark.parametrize(("days", "prunes"), [("30", True), ("0", False)])
def test_the_worker_pool_prunes_by_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, days: str, prunes: bool
) -> None:
    """`serve` and `worker` run a Pruner beside their workers unless the retention is 0."""
    from tests.webhooks.fakes import FakeConnector
    from webhooks.service import build_service

    monkeypatch.setenv("TIERDESK_RETENTION_DAYS", days)
    settings = load_settings(_env_file=None, database_url=f"sqlite:///{tmp_path / 'i.db'}")
    service = build_service(settings, with_worker=True, connectors={"jira": FakeConnector()})
    try:
        assert service.pool is not None
        pruner = service.pool.pruner
        assert (pruner is not None) == prunes
        if pruner is not None:
            assert pruner.days == 30 and pruner.inbox is service.inbox
    finally:
        service.inbox.close()
