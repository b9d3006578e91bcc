"""The worker with a fake connector: coalescing, own events, fresh reads, retries honouring
Retry-After, vendor pauses, dead letters and the decision records."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from connectors.base import (
    Envelope,
    PayloadInvalid,
    RateLimited,
    VendorRejected,
    VendorUnavailable,
)
from connectors.retry import RetryStrategy
from connectors.vendor_limit import VendorLimit, VendorPaused
from tests.webhooks.conftest import FakeClock
from tests.webhooks.fakes import BOT, FakeConnector, fake_decide
from tiering.policy import Policy, load_policy
from webhooks.defaults import EXAMPLE_POLICY_SOURCE, default_policy_text
from webhooks.inbox.store import Inbox
from webhooks.pool import WorkerPool
from webhooks.worker import Worker

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def policy() -> Policy:
    text, source = default_policy_text(), EXAMPLE_POLICY_SOURCE
    return load_policy(text, source=source)


def make_worker(inbox: Inbox, policy: Policy, *connectors: FakeConnector,
                max_attempts: int = 8) -> Worker:
    return Worker(inbox=inbox, connectors={c.vendor: c for c in connectors} or {},
                  policy=policy, decide=fake_decide, max_attempts=max_attempts,
                  lease_seconds=60, retry_max_delay=600, now=lambda: NOW)


def put(inbox: Inbox, delivery: str, ticket: str = "T-1", *, vendor: str = "jira",
        seq: int = 1, actor: str | None = "agent", ts: int | None = None,
        labels: tuple[str, ...] = ()) -> None:
    inbox.enqueue(
        Envelope(vendor=vendor, event_type="jira:issue_updated", handled=True, ticket=ticket,
                 delivery_id=delivery, actor=actor, occurred_at=ts),
        {"ticket": ticket, "seq": seq, "labels": list(labels)},
    )


def test_pending_events_are_coalesced_into_one_evaluation(inbox: Inbox, policy: Policy) -> None:
    """Three events of one ticket make one current_ticket call (arrival order) and one write."""
    fake = FakeConnector()
    for i in range(3):
        put(inbox, f"d{i}", seq=i)
    assert make_worker(inbox, policy, fake).drain() == 1
    assert [[p["seq"] for p in c.payloads] for c in fake.current_calls] == [[0, 1, 2]]
    assert len(fake.applied) == 1
    assert inbox.counts() == {"done": 3}


def test_decision_is_recorded_and_note_key_kept(inbox: Inbox, policy: Policy) -> None:
    """A write is recorded (policy digest, tiers, reasons, calls) and its note key is passed to
    the next evaluation, which then writes nothing."""
    fake = FakeConnector()
    worker = make_worker(inbox, policy, fake)
    put(inbox, "d1")
    worker.drain()
    put(inbox, "d2", labels=("tier-l1",))  # the vendor now shows our label
    worker.drain()
    assert fake.current_calls[1].last_note_key == "ab000000"
    assert len(fake.applied) == 1  # the second evaluation changed nothing
    newest, first = inbox.history("jira", "T-1")
    assert (first.outcome, first.policy_digest, first.tier_after, first.reasons) == (
        "applied", policy.digest, "L1", ("fake rule: everything is L1",))
    assert first.calls == ({"method": "PUT", "path": "/rest/api/2/issue/T-1", "status": 204,
                            "purpose": "apply decision"},)
    assert (newest.outcome, newest.calls) == ("unchanged", ())


def test_bot_events_make_no_request(inbox: Inbox, policy: Policy) -> None:
    """Events caused by tierdesk's own account are done without any connector call."""
    fake = FakeConnector()
    put(inbox, "d1", actor=BOT)
    put(inbox, "d2", actor=BOT)
    make_worker(inbox, policy, fake).drain()
    assert fake.current_calls == [] and fake.applied == []
    assert inbox.counts() == {"done": 2}
    assert [r.outcome for r in inbox.history("jira", "T-1")] == ["own-event"]


def test_bot_event_mixed_with_agent_event_is_evaluated(inbox: Inbox, policy: Policy) -> None:
    """An agent's event with the bot's own is evaluated on all payloads (newest state last)."""
    fake = FakeConnector()
    put(inbox, "d1", actor="agent", seq=1)
    put(inbox, "d2", actor=BOT, seq=2)
    make_worker(inbox, policy, fake).drain()
    assert [[p["seq"] for p in c.payloads] for c in fake.current_calls] == [[1, 2]]


def test_rate_limit_waits_retry_after_and_pauses_vendor(
    inbox: Inbox, policy: Policy, clock: FakeClock
) -> None:
    """A 429 retries no sooner than Retry-After and pauses every ticket of that vendor, not
    the other vendor's."""
    jira = FakeConnector(errors=[RateLimited("429 Too Many Requests", retry_after=30)])
    zendesk = FakeConnector(vendor="zendesk")
    worker = make_worker(inbox, policy, jira, zendesk)
    put(inbox, "d1", "A")
    clock.advance(1)
    put(inbox, "d2", "B")
    put(inbox, "z1", "99", vendor="zendesk")
    assert worker.run_once()  # A: 429
    assert worker.run_once()  # Zendesk is not paused
    assert [t.key for t, _ in zendesk.applied] == ["99"]
    assert not worker.run_once()  # B waits: the Jira account is rate limited
    state = inbox.ticket_state("jira", "A")
    assert state is not None and state["next_attempt_at"] >= clock.now + 30
    clock.advance(29)
    assert not worker.run_once()
    clock.advance(2)
    assert worker.drain() == 2
    assert sorted(t.key for t, _ in jira.applied) == ["A", "B"]
    assert inbox.history("jira", "A")[1].outcome == "retry"


def test_outage_is_retried_with_a_fresh_read(
    inbox: Inbox, policy: Policy, clock: FakeClock
) -> None:
    """After a 503/timeout the next attempt reads the ticket fresh (the write may have landed)."""
    fake = FakeConnector(errors=[VendorUnavailable("read timeout", ambiguous=True)])
    worker = make_worker(inbox, policy, fake)
    put(inbox, "d1")
    worker.drain()
    assert inbox.counts() == {"pending": 1}
    clock.advance(RetryStrategy(maximum=600).delay(1) + 2)  # at most initial * 2 + jitter
    assert worker.drain() == 1
    assert [c.fresh for c in fake.current_calls] == [False, True]
    assert inbox.counts() == {"done": 1}


def test_503_with_retry_after_pauses_the_vendor(
    inbox: Inbox, policy: Policy, clock: FakeClock
) -> None:
    """A 503 that says Retry-After is honoured like a 429."""
    fake = FakeConnector(errors=[VendorUnavailable("503", status=503, retry_after=120)])
    worker = make_worker(inbox, policy, fake)
    put(inbox, "d1")
    worker.drain()
    assert inbox.paused_until("jira") == pytest.approx(clock.now + 120)


def test_rejection_is_a_dead_letter_with_vendor_text(inbox: Inbox, policy: Policy) -> None:
    """A 4xx is not retried: the events become dead letters carrying the vendor's text."""
    fake = FakeConnector(errors=[VendorRejected("Field 'labels' cannot be set", status=400)])
    put(inbox, "d1")
    make_worker(inbox, policy, fake).drain()
    [letter] = inbox.dead_letters()
    assert letter.last_error == "VendorRejected (HTTP 400): Field 'labels' cannot be set"
    assert inbox.history("jira", "T-1")[0].outcome == "dead"


def test_unreadable_stored_payload_is_a_dead_letter(inbox: Inbox, policy: Policy) -> None:
    """A payload the connector cannot read is dead-lettered at once (retrying cannot help)."""
    fake = FakeConnector(errors=[PayloadInvalid("issue.fields is not an object")])
    put(inbox, "d1")
    make_worker(inbox, policy, fake).drain()
    assert inbox.depth().dead_letters == 1


def test_max_attempts_then_dead_letter(inbox: Inbox, policy: Policy, clock: FakeClock) -> None:
    """Repeated outages end as a dead letter after max_attempts, with the last error."""
    fake = FakeConnector(errors=[VendorUnavailable(f"503 #{i}", status=503) for i in range(3)])
    worker = make_worker(inbox, policy, fake, max_attempts=3)
    put(inbox, "d1")
    for _ in range(3):
        worker.drain()
        clock.advance(700)
    [letter] = inbox.dead_letters()
    assert (letter.attempts, letter.last_error) == (3, "VendorUnavailable (HTTP 503): 503 #2")
    assert fake.applied == []


def test_out_of_order_delivery_reads_fresh(inbox: Inbox, policy: Policy) -> None:
    """An event older than one already processed makes the connector read current state."""
    fake = FakeConnector()
    worker = make_worker(inbox, policy, fake)
    put(inbox, "d1", ts=2000)
    worker.drain()
    put(inbox, "d0", ts=1000)  # delivered late
    worker.drain()
    assert [c.fresh for c in fake.current_calls] == [False, True]


def test_unexpected_error_is_retried_not_fatal(
    inbox: Inbox, policy: Policy, clock: FakeClock
) -> None:
    """A bug in a connector does not stop the worker; the event is retried later."""
    fake = FakeConnector(errors=[KeyError("fields")])
    worker = make_worker(inbox, policy, fake)
    put(inbox, "d1")
    worker.drain()
    assert inbox.history("jira", "T-1")[0].error == "KeyError: 'fields'"
    clock.advance(10)
    worker.drain()
    assert inbox.counts() == {"done": 1}


def test_unconfigured_vendor_is_left_pending(inbox: Inbox, policy: Policy) -> None:
    """Events of a vendor this worker has no connector for stay pending for another worker."""
    put(inbox, "z1", "5", vendor="zendesk")
    assert make_worker(inbox, policy, FakeConnector()).drain() == 0
    assert inbox.counts() == {"pending": 1}


def test_real_engine_decision_is_recorded(inbox: Inbox, policy: Policy) -> None:
    """With tiering.decide the record carries the engine's tier, reasons and the policy digest."""
    from tiering import decide

    fake = FakeConnector()
    worker = Worker(inbox=inbox, connectors={"jira": fake}, policy=policy, decide=decide,
                    now=lambda: NOW)
    put(inbox, "d1")
    worker.drain()
    [record] = inbox.history("jira", "T-1")
    same_ticket = FakeConnector().current_ticket([{"ticket": "T-1", "seq": 1, "labels": []}])
    expected = decide(same_ticket, policy, now=NOW)
    assert (record.policy_digest, record.tier_before, record.tier_after, record.reasons) == (
        policy.digest, expected.previous_tier, expected.tier, expected.reasons)
    assert record.outcome == ("applied" if expected.changed else "unchanged")
    assert record.decision == expected.to_dict()


def test_pool_processes_and_stops_gracefully(tmp_path: object, policy: Policy) -> None:
    """Worker threads process stored events, wake on new work, and stop when asked."""
    box = Inbox.connect(f"sqlite:///{tmp_path}/pool.db")
    fake = FakeConnector()
    workers = [Worker(inbox=box, connectors={"jira": fake}, policy=policy, decide=fake_decide,
                      name=f"w{i}") for i in range(2)]
    pool = WorkerPool(workers)
    pool.start()
    try:
        for i in range(20):
            put(box, f"d{i}", f"T-{i}")
        pool.wake()
        deadline = time.monotonic() + 30
        while box.counts().get("done", 0) < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        pool.stop(timeout=10)
    assert box.counts() == {"done": 20}
    assert not any(t.is_alive() for t in threading.enumerate() if t.name in ("w0", "w1"))
    box.close()


def test_limit_closed_by_another_thread_hands_the_ticket_back(
    inbox: Inbox, policy: Policy, clock: FakeClock
) -> None:
    """When another thread of the process was just rate limited (after this one claimed), the
    claimed ticket is handed back untouched (no request, no attempt counted), and the vendor's
    limit has recorded the pause for other processes."""
    limit = VendorLimit("jira", record=inbox, clock=clock)
    fake = FakeConnector()
    worker = Worker(inbox=inbox, connectors={"jira": fake}, policy=policy, decide=fake_decide,
                    limits={"jira": limit})
    put(inbox, "d1")
    claim = inbox.claim

    def claim_then_refused(**kwargs):  # type: ignore[no-untyped-def]
        claimed = claim(**kwargs)
        limit.close(20, reason="HTTP 429 (another thread)")  # a sibling's 429 arrives now
        return claimed

    worker.inbox.claim = claim_then_refused  # type: ignore[method-assign]
    assert worker.run_once()
    worker.inbox.claim = claim  # type: ignore[method-assign]
    assert fake.current_calls == [] and inbox.counts() == {"pending": 1}
    assert inbox.paused_until("jira") == pytest.approx(clock.now + 20)
    clock.advance(21)
    assert worker.drain() == 1
    [call] = fake.current_calls
    assert call.fresh is False  # the handed-back claim did not count as an attempt


def test_limit_closing_between_read_and_write_prevents_the_write(
    inbox: Inbox, policy: Policy, clock: FakeClock
) -> None:
    """A 429 seen by another thread after this thread's read stops this thread's write."""
    limit = VendorLimit("jira", record=inbox, clock=clock)

    class RateLimitedElsewhere(FakeConnector):
        def current_ticket(self, payloads, *, fresh=False, last_note_key=None):  # type: ignore[no-untyped-def]
            limit.close(20, reason="HTTP 429")  # another thread's 429 arrives now
            return super().current_ticket(payloads, fresh=fresh, last_note_key=last_note_key)

    fake = RateLimitedElsewhere()
    worker = Worker(inbox=inbox, connectors={"jira": fake}, policy=policy, decide=fake_decide,
                    limits={"jira": limit})
    put(inbox, "d1")
    worker.run_once()
    assert fake.applied == [] and inbox.counts() == {"pending": 1}


def test_stale_payload_marker_does_not_override_the_inbox_note_key(
    inbox: Inbox, policy: Policy
) -> None:
    """A late webhook whose payload shows an older note marker does not make the worker post
    the current checklist again: without a fresh read the inbox's last note key wins."""

    class PayloadMarker(FakeConnector):
        def current_ticket(self, payloads, *, fresh=False, last_note_key=None):  # type: ignore[no-untyped-def]
            ticket = super().current_ticket(payloads, fresh=fresh, last_note_key=last_note_key)
            return replace(ticket, last_note_key="0ld00000")  # marker seen in a stale payload

    fake = PayloadMarker()
    worker = make_worker(inbox, policy, fake)
    put(inbox, "d1", labels=("tier-l1",))
    worker.drain()
    assert [d.comment is not None for _, d in fake.applied] == [True]  # first note posted
    put(inbox, "d2", labels=("tier-l1",))  # a late delivery: payload shows the older marker
    worker.drain()
    assert len(fake.applied) == 1  # the same checklist is not posted again


def test_lease_lost_during_a_slow_read_means_no_write(
    inbox: Inbox, policy: Policy, clock: FakeClock
) -> None:
    """If the lease expired during the read and another worker took the ticket, this worker
    writes nothing; the new holder does the work once."""
    other: list[object] = []

    class SlowRead(FakeConnector):
        def current_ticket(self, payloads, *, fresh=False, last_note_key=None):  # type: ignore[no-untyped-def]
            clock.advance(61)  # the 60 s lease runs out while the vendor is slow
            other.append(inbox.claim(lease_seconds=60))  # another worker takes over
            return super().current_ticket(payloads, fresh=fresh, last_note_key=last_note_key)

    slow = SlowRead()
    put(inbox, "d1")
    make_worker(inbox, policy, slow).run_once()
    assert slow.applied == [] and other[0] is not None
    assert inbox.counts() == {"pending": 1}


def test_slow_read_renews_the_lease_before_writing(
    inbox: Inbox, policy: Policy, clock: FakeClock
) -> None:
    """A read that used up more than half the lease renews it, then writes."""
    class HalfLease(FakeConnector):
        def current_ticket(self, payloads, *, fresh=False, last_note_key=None):  # type: ignore[no-untyped-def]
            clock.advance(45)
            return super().current_ticket(payloads, fresh=fresh, last_note_key=last_note_key)

    fake = HalfLease()
    put(inbox, "d1")
    make_worker(inbox, policy, fake).run_once()
    assert len(fake.applied) == 1 and inbox.counts() == {"done": 1}


def test_snapshot_older_than_our_own_write_is_read_fresh(
    inbox: Inbox, policy: Policy, clock: FakeClock
) -> None:
    """A delivery whose event happened before tierdesk's last write carries a stale snapshot:
    the worker asks for a fresh read instead of deciding on it; a later event needs none."""
    fake = FakeConnector()
    worker = make_worker(inbox, policy, fake)
    written_ms = int(clock.now * 1000)
    put(inbox, "d1", ts=written_ms - 5000)
    worker.drain()  # writes: known_at = now
    clock.advance(10)
    put(inbox, "d0", ts=written_ms - 1000)  # happened before the write, delivered late
    worker.drain()
    put(inbox, "d2", ts=int(clock.now * 1000) + 500, labels=("tier-l1",))  # after the write
    worker.drain()
    assert [c.fresh for c in fake.current_calls] == [False, True, False]


def test_fresh_read_moves_known_at(inbox: Inbox, policy: Policy, clock: FakeClock) -> None:
    """After a fresh read, events older than the read are stale as well."""
    fake = FakeConnector(errors=[VendorUnavailable("timeout", ambiguous=True)])
    worker = make_worker(inbox, policy, fake)
    put(inbox, "d1", ts=1000, labels=("tier-l1",))
    worker.drain()
    clock.advance(10)
    worker.drain()  # retried with a fresh read, nothing to write (label present, note posted)
    state = inbox.ticket_state("jira", "T-1")
    assert state is not None and state["known_at"] is not None
    put(inbox, "d0", ts=state["known_at"] - 1)
    worker.drain()
    assert [c.fresh for c in fake.current_calls] == [False, True, True]


def test_vendor_paused_hands_the_ticket_back_without_an_attempt(
    inbox: Inbox, policy: Policy, clock: FakeClock
) -> None:
    """A request refused by the vendor's limit (nothing sent: a sibling thread's 429 closed it)
    hands the ticket back untouched, counts no attempt and pauses the vendor for others."""
    fake = FakeConnector(errors=[VendorPaused("jira", 12.0)])
    worker = make_worker(inbox, policy, fake)
    put(inbox, "d1")
    assert worker.run_once()
    assert fake.applied == [] and inbox.counts() == {"pending": 1}
    assert inbox.paused_until("jira") == pytest.approx(clock.now + 12)
    clock.advance(13)
    assert worker.drain() == 1
    assert len(fake.applied) == 1
    assert fake.current_calls[-1].fresh is False  # no attempt was counted
