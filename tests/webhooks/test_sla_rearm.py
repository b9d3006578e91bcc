"""Nothing is lost when an SLA due event becomes a dead letter (a vendor refusal, MAX_ATTEMPTS
failures, an evaluation that never finishes): the inbox re-arms the ticket's timer in the dead
letter's transaction, with a backoff, under a new delivery id; the threshold is then acted on
once, and replaying the dead letters afterwards acts on nothing again. On SQLite and PostgreSQL."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from connectors.base import Applied, Decide, VendorRejected, VendorUnavailable
from tests.webhooks.conftest import FakeClock
from tests.webhooks.test_sla_worker import T0, Issue, MemoryVendor, at, event, fire, policy
from tiering.models import Decision, Ticket
from webhooks.inbox.schema import DEAD, SLA_DUE_EVENT, UNFINISHED_ERROR
from webhooks.inbox.sla_store import REARM_INITIAL, REARM_MAX, rearm_delay
from webhooks.inbox.store import Inbox
from webhooks.metrics import Metrics
from webhooks.sla_work import TimerLoop
from webhooks.worker import Worker

WARNING_KEY = f"resolution@{int(T0)}:warn0.75"


class _Crash(BaseException):
    """Stands for the process dying (SIGKILL) mid-evaluation: nothing after it runs, so the
    claim stays unfinished until its lease expires (as in test_poison.py)."""


@dataclass
class FailingVendor(MemoryVendor):
    """MemoryVendor whose writes fail the way `failure` says: "refuse" (a 400, dead letter at
    once), "outage" (a 503, retried until MAX_ATTEMPTS), "crash" (the process dies while
    deciding on a synthetic due event), or None (works)."""

    failure: str | None = None

    def current_ticket(self, payloads: Sequence[Mapping[str, Any]], *, fresh: bool = False,
                       last_note_key: str | None = None) -> Ticket:
        ticket = super().current_ticket(payloads, fresh=fresh, last_note_key=last_note_key)
        if self.failure == "crash" and "issue" in payloads[-1]:
            raise _Crash
        return ticket

    def apply(self, ticket: Ticket, decision: Decision, *, decide: Decide) -> Applied:
        if decision.changed and self.failure == "refuse":
            raise VendorRejected("Field 'labels' cannot be set", status=400)
        if decision.changed and self.failure == "outage":
            raise VendorUnavailable("503 Service Unavailable", status=503)
        return super().apply(ticket, decision, decide=decide)


def failing(clock: FakeClock) -> FailingVendor:
    v = FailingVendor(clock)
    v.issues["T-1"] = Issue()
    return v


def make(inbox: Inbox, v: MemoryVendor, clock: FakeClock, metrics: Metrics | None = None,
         max_attempts: int = 8) -> Worker:
    return Worker(inbox=inbox, connectors={"jira": v}, policy=policy("1000s"), lease_seconds=60,
                  metrics=metrics, max_attempts=max_attempts, retry_initial_delay=1.0,
                  retry_max_delay=1.0, now=lambda: datetime.fromtimestamp(clock.now, UTC))


def due_events(inbox: Inbox) -> list[Any]:
    return [e for e in inbox.events_of("jira", "T-1") if e.event_type == SLA_DUE_EVENT]


def test_rearm_delay_doubles_up_to_an_hour() -> None:
    assert [rearm_delay(n) for n in range(8)] == [60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert rearm_delay(10_000) == REARM_MAX and rearm_delay(0) == REARM_INITIAL


def test_a_refused_due_event_rearms_the_timer_with_backoff_and_fires_once_when_fixed(
    inbox: Inbox, clock: FakeClock, records: list[logging.LogRecord]
) -> None:
    clock.now = T0
    v = failing(clock)
    metrics = Metrics()
    work = make(inbox, v, clock, metrics)
    at(clock, 1)
    event(inbox)
    assert work.drain() == 1
    timer = inbox.sla_timer("jira", "T-1")
    assert timer is not None and timer.due_at == T0 + 750 and timer.rearms == 0
    v.failure = "refuse"
    at(clock, 751)
    assert fire(inbox, work) == 1
    [dead] = inbox.dead_letters()
    assert dead.event_type == SLA_DUE_EVENT and dead.last_error is not None
    # Without the re-arm the ticket would have no due instant until its next event.
    timer = inbox.sla_timer("jira", "T-1")
    assert timer is not None and timer.due_at == T0 + 751 + 60 and timer.rearms == 1
    assert timer.rearm_error is not None and "cannot be set" in timer.rearm_error
    assert [t.ticket for t in inbox.sla_timers()] == ["T-1"]  # still listed by `sla list`
    assert 'tierdesk_sla_timer_rearms_total{vendor="jira"} 1.0' in metrics.render().decode()
    said = [r for r in records if r.getMessage() == "sla timer re-armed after a dead letter"]
    assert len(said) == 1 and said[0].levelno == logging.WARNING
    at(clock, 800)
    assert fire(inbox, work) == 0  # backing off
    at(clock, 811)
    assert fire(inbox, work) == 1  # still refused: the backoff doubles
    timer = inbox.sla_timer("jira", "T-1")
    assert timer is not None and timer.due_at == T0 + 811 + 120 and timer.rearms == 2
    ids = [e.delivery_id for e in due_events(inbox)]
    assert len(ids) == len(set(ids)) == 2  # each re-arm fires under a new delivery id
    assert inbox.sla_fired_keys("jira", "T-1") == frozenset()
    v.failure = None  # the administrator fixed the field
    at(clock, 931)
    assert fire(inbox, work) == 1
    issue = v.issues["T-1"]
    assert "sla-warning" in issue.labels and len(issue.comments) == 1
    assert inbox.sla_fired_keys("jira", "T-1") == {WARNING_KEY}
    timer = inbox.sla_timer("jira", "T-1")
    assert timer is not None and timer.due_at == T0 + 1000 and timer.fraction == 1.0
    assert (timer.rearms, timer.rearm_error) == (0, None)  # a decision recorded it again
    # Replaying the two dead letters afterwards acts on nothing twice (the fired keys).
    assert inbox.replay() == 2
    assert work.drain() == 1
    assert len(issue.comments) == 1 and inbox.sla_fired_keys("jira", "T-1") == {WARNING_KEY}
    assert inbox.counts() == {"done": 4}  # one webhook and three due events
    timer = inbox.sla_timer("jira", "T-1")
    assert timer is not None and timer.due_at == T0 + 1000


def test_replaying_the_dead_letter_before_the_rearmed_timer_fires_acts_once(
    inbox: Inbox, clock: FakeClock
) -> None:
    clock.now = T0
    v = failing(clock)
    work = make(inbox, v, clock)
    event(inbox)
    work.drain()
    v.failure = "refuse"
    at(clock, 751)
    fire(inbox, work)
    v.failure = None
    assert inbox.replay() == 1
    assert work.drain() == 1  # the replayed due event acts on the warning
    assert len(v.issues["T-1"].comments) == 1
    timer = inbox.sla_timer("jira", "T-1")
    assert timer is not None and timer.due_at == T0 + 1000 and timer.rearms == 0
    at(clock, 811)  # the re-armed instant was replaced by the decision's timer
    assert fire(inbox, work) == 0
    assert len(v.issues["T-1"].comments) == 1


def test_a_due_event_out_of_attempts_rearms_the_timer(inbox: Inbox, clock: FakeClock) -> None:
    clock.now = T0
    v = failing(clock)
    work = make(inbox, v, clock, max_attempts=2)
    event(inbox)
    work.drain()
    v.failure = "outage"
    at(clock, 751)
    assert fire(inbox, work) == 1  # attempt 1: retried in 1 s
    assert inbox.sla_timer("jira", "T-1").due_at is None  # type: ignore[union-attr]
    at(clock, 753)
    assert work.drain() == 1  # attempt 2 of 2: a dead letter
    [dead] = inbox.dead_letters()
    assert dead.event_type == SLA_DUE_EVENT and dead.attempts == 2
    timer = inbox.sla_timer("jira", "T-1")
    assert timer is not None and timer.due_at == T0 + 753 + 60 and timer.rearms == 1
    assert timer.rearm_error is not None and "503" in timer.rearm_error
    v.failure = None
    at(clock, 813)
    assert fire(inbox, work) == 1
    assert len(v.issues["T-1"].comments) == 1
    assert inbox.sla_fired_keys("jira", "T-1") == {WARNING_KEY}


def test_an_ordinary_dead_letter_leaves_the_timer_alone(inbox: Inbox, clock: FakeClock) -> None:
    clock.now = T0
    v = failing(clock)
    work = make(inbox, v, clock)
    event(inbox)
    work.drain()
    at(clock, 10)
    v.issues["T-1"].labels = set()  # someone removed the tier label: tierdesk puts it back
    v.failure = "refuse"
    event(inbox)
    work.drain()
    assert inbox.counts() == {"done": 1, "dead": 1}
    timer = inbox.sla_timer("jira", "T-1")
    assert timer is not None and timer.due_at == T0 + 750 and timer.rearms == 0


def test_a_due_event_whose_evaluation_kills_the_process_rearms_and_fires_once_after_restart(
    inbox: Inbox, clock: FakeClock
) -> None:
    """SIGKILL in the firing window, every time: after MAX_ATTEMPTS unfinished claims the due
    event is dead-lettered as a poison pill in the claiming transaction, which re-arms the
    timer; the restarted service (crash fixed) acts on the threshold exactly once."""
    clock.now = T0
    v = failing(clock)
    event(inbox)
    assert make(inbox, v, clock).drain() == 1
    v.failure = "crash"
    at(clock, 751)
    TimerLoop(inbox).run_once()
    crashes = 0
    for _ in range(20):  # bounded: restarts after each crash
        try:
            make(inbox, v, clock, max_attempts=3).drain()
            break
        except _Crash:
            crashes += 1
            clock.advance(61)  # the dead process's lease (60 s) expires
    assert crashes == 3
    [dead] = inbox.dead_letters()
    assert dead.status == DEAD and dead.last_error == UNFINISHED_ERROR.format(claims=3)
    timer = inbox.sla_timer("jira", "T-1")
    assert timer is not None and timer.rearms == 1 and timer.due_at == clock.now + 60
    assert timer.rearm_error == UNFINISHED_ERROR.format(claims=3)
    v.failure = None
    clock.advance(60)
    restarted = make(inbox, v, clock, max_attempts=3)
    assert fire(inbox, restarted) == 1
    assert len(v.issues["T-1"].comments) == 1
    assert inbox.sla_fired_keys("jira", "T-1") == {WARNING_KEY}
    clock.advance(5)
    assert fire(inbox, restarted) == 0 and len(v.issues["T-1"].comments) == 1


def test_explain_and_sla_list_show_a_rearmed_timer(
    tmp_path: Any, clock: FakeClock, monkeypatch: Any
) -> None:
    import json

    from click.testing import CliRunner

    from tests.webhooks.test_sla_worker import POLICY
    from webhooks.cli import main

    url = f"sqlite:///{tmp_path}/cli.db"
    policy_file = tmp_path / "sla.yaml"
    policy_file.write_text(POLICY % {"l1": "1000s"}, encoding="utf-8")
    monkeypatch.setenv("TIERDESK_DATABASE_URL", url)
    monkeypatch.setenv("TIERDESK_POLICY", str(policy_file))
    monkeypatch.chdir(tmp_path)
    box = Inbox.connect(url, clock=clock)
    clock.now = T0
    v = failing(clock)
    work = make(box, v, clock)
    event(box)
    work.drain()
    v.failure = "refuse"
    at(clock, 751)
    fire(box, work)
    box.close()
    now = datetime.fromtimestamp(T0 + 760, UTC).isoformat()
    result = CliRunner().invoke(main, ["explain", "jira", "T-1", "--now", now, "--json"])
    assert result.exit_code == 0, result.output
    view = json.loads(result.output)["sla"]
    assert view["rearmed"]["times"] == 1
    assert view["rearmed"]["due"] == datetime.fromtimestamp(T0 + 811, UTC).isoformat()
    assert "cannot be set" in view["rearmed"]["error"]
    result = CliRunner().invoke(main, ["explain", "jira", "T-1", "--now", now])
    assert result.exit_code == 0, result.output
    assert "timer re-armed after its due event became a dead letter (1 in a row)" in result.output
    result = CliRunner().invoke(main, ["sla", "list", "--now", now])
    assert result.exit_code == 0, result.output
    assert "re-armed: jira T-1: its due event became a dead letter (1 in a row)" in result.output
    result = CliRunner().invoke(main, ["sla", "list", "--now", now, "--json"])
    [row] = json.loads(result.output)["clocks"]
    assert row["rearms"] == 1 and row["retry_at"] == view["rearmed"]["due"]
