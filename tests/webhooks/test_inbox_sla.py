"""The inbox's SLA side on SQLite and PostgreSQL: history marks, fired keys, notices, timers,
due-timer leases and the exactly-once synthetic due events; migration from schema version 4."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from connectors.base import Envelope
from tests.webhooks.conftest import FakeClock
from tiering.sla import StatusInterval, TierEntry
from webhooks.inbox.migrations import SCHEMA_VERSION
from webhooks.inbox.records import CLEAR_TIMER, DecisionRecord, Notice, SlaMark, SlaTimer, SlaWrite
from webhooks.inbox.schema import SLA_DUE_EVENT, schema_version
from webhooks.inbox.sla_store import due_delivery_id, history_from_marks
from webhooks.inbox.store import Inbox

T0 = 1_800_000_000.0


def dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def env(delivery: str, ticket: str = "T-1") -> Envelope:
    return Envelope(vendor="jira", event_type="jira:issue_updated", handled=True,
                    ticket=ticket, delivery_id=delivery, actor=None, occurred_at=None)


def timer(ticket: str = "T-1", due: float | None = T0 + 60, *, vendor: str = "jira",
          breach: float | None = None, clocks: int = 1) -> SlaTimer:
    return SlaTimer(vendor=vendor, ticket=ticket, due_at=due, clock="resolution",
                    fraction=0.75, breach_at=breach, policy_digest="abc", plan="premium",
                    tier="L1", priority="high",
                    clocks=({"clock": "resolution", "state": "running"},), open_clocks=clocks)


def test_marks_make_the_history_out_of_order_and_deduplicated(inbox: Inbox) -> None:
    inbox.record_marks("jira", "T-1", [
        SlaMark("status", T0 + 100, "pending"),
        SlaMark("created", T0 + 5),          # a later creation than the one below: ignored
        SlaMark("created", T0),
        SlaMark("status", T0 + 10, "open"),
        SlaMark("status", T0 + 20, "open"),  # a repeat of the status in force: not stored
        SlaMark("tier", T0, "L1"),
        SlaMark("tier", T0 + 50, "L1"),
        SlaMark("tier", T0 + 60, "L2"),
        SlaMark("reply", T0 + 30),
    ])
    inbox.record_marks("jira", "T-1", [SlaMark("status", T0 + 10, "open")])  # redelivered
    kinds = [(m.kind, m.value) for m in inbox.sla_marks("jira", "T-1")]
    assert kinds.count(("status", "open")) == 1 and kinds.count(("created", "")) == 1
    history = inbox.sla_history("jira", "T-1")
    assert history is not None
    assert history.created_at == dt(T0)
    assert history.statuses == (
        StatusInterval("new", dt(T0), dt(T0 + 10)),
        StatusInterval("open", dt(T0 + 10), dt(T0 + 100)),
        StatusInterval("pending", dt(T0 + 100)),
    )
    assert history.tiers == (TierEntry("L1", dt(T0)), TierEntry("L2", dt(T0 + 60)))
    assert history.first_reply_at == dt(T0 + 30)
    assert inbox.sla_history("jira", "T-2") is None  # creation unknown
    assert inbox.sla_history("zendesk", "T-1") is None


def test_history_takes_extra_marks_not_yet_recorded(inbox: Inbox) -> None:
    inbox.record_marks("jira", "T-1", [SlaMark("created", T0)])
    history = inbox.sla_history("jira", "T-1", extra=[SlaMark("status", T0 + 9, "solved")])
    assert history is not None and history.status_at(dt(T0 + 10)) == "solved"
    assert [m.kind for m in inbox.sla_marks("jira", "T-1")] == ["created"]


@pytest.mark.parametrize(("mark", "says"), [
    (SlaMark("status", T0, "waiting"), "unknown status 'waiting'"),
    (SlaMark("colour", T0, "red"), "unknown SLA mark kind 'colour'"),
    (SlaMark("tier", T0, ""), "needs the tier's name"),
    (SlaMark("created", float("nan")), "finite epoch time"),
])
def test_bad_marks_are_refused_with_the_reason(inbox: Inbox, mark: SlaMark, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        inbox.record_marks("jira", "T-1", [SlaMark("created", T0), mark])
    assert inbox.sla_marks("jira", "T-1") == []  # nothing of the refused write was kept


def test_a_reply_before_creation_counts_from_creation() -> None:
    history = history_from_marks([SlaMark("created", T0), SlaMark("reply", T0 - 5)])
    assert history is not None and history.first_reply_at == dt(T0)


def test_complete_records_fired_keys_notices_and_timer_with_the_decision(inbox: Inbox) -> None:
    inbox.enqueue(env("d1"), {})
    claim = inbox.claim(lease_seconds=30)
    assert claim is not None
    woken: list[float] = []
    inbox.add_timer_listener(woken.append)
    notice = Notice(notice_key="jira:T-1:resolution:0.75", url="https://hooks.example/x",
                    body={"text": "T-1: resolution at 75%"})
    record = DecisionRecord(vendor="jira", ticket="T-1", outcome="applied",
                            event_ids=tuple(e.id for e in claim.events))
    assert inbox.complete(claim, record=record, sla=SlaWrite(
        marks=(SlaMark("created", T0), SlaMark("tier", T0, "L1")),
        fired=("resolution:0.75", "resolution:0.75"), notices=(notice,), timer=timer(),
    ))
    assert woken == [T0 + 60]
    assert inbox.sla_fired_keys("jira", "T-1") == {"resolution:0.75"}
    assert inbox.history("jira", "T-1")[0].outcome == "applied"
    [stored] = inbox.notices_of("jira", "T-1")
    assert json.loads(stored.body) == {"text": "T-1: resolution at 75%"}
    assert (stored.attempts, stored.sent_at, stored.next_attempt_at) == (0, None, inbox.clock())
    assert inbox.due_notices() == [stored]
    kept = inbox.sla_timer("jira", "T-1")
    assert kept is not None and kept.due_at == T0 + 60 and kept.policy_digest == "abc"
    assert kept.clocks == ({"clock": "resolution", "state": "running"},)
    # The same threshold and notice again (a retry after a crash): recorded once.
    inbox.record_sla("jira", "T-1", SlaWrite(fired=("resolution:0.75", "resolution:1.0"),
                                             notices=(notice,)))
    assert inbox.sla_fired_keys("jira", "T-1") == {"resolution:0.75", "resolution:1.0"}
    assert len(inbox.notices_of("jira", "T-1")) == 1


def test_a_failed_complete_records_no_fired_key(inbox: Inbox) -> None:
    inbox.enqueue(env("d1"), {})
    claim = inbox.claim(lease_seconds=30)
    assert claim is not None
    with pytest.raises(ValueError, match="unknown status"):
        inbox.complete(claim, record=None, sla=SlaWrite(
            marks=(SlaMark("status", T0, "bogus"),), fired=("resolution:1.0",)))
    assert inbox.sla_fired_keys("jira", "T-1") == frozenset()
    assert inbox.counts() == {"pending": 1}  # the events were not marked done either


def test_timers_set_replace_clear_and_list_soonest_breach_first(inbox: Inbox) -> None:
    inbox.set_timer(timer("A", T0 + 50, breach=T0 + 500))
    inbox.set_timer(timer("B", T0 + 10, breach=T0 + 100))
    inbox.set_timer(timer("C", None, breach=None))      # breached already / paused
    inbox.set_timer(timer("D", T0 + 5, vendor="zendesk", breach=T0 + 300, clocks=2))
    assert [t.ticket for t in inbox.sla_timers()] == ["B", "D", "A", "C"]
    assert [t.ticket for t in inbox.sla_timers(vendor="jira")] == ["B", "A", "C"]
    assert [t.ticket for t in inbox.sla_timers(at_risk_before=T0 + 400)] == ["B", "D"]
    assert inbox.open_clock_count() == {"jira": 3, "zendesk": 2}
    inbox.set_timer(timer("B", T0 + 700, breach=T0 + 800))
    assert [t.ticket for t in inbox.sla_timers()] == ["D", "A", "B", "C"]
    inbox.clear_timer("jira", "A")
    assert inbox.sla_timer("jira", "A") is None
    with pytest.raises(ValueError, match=r"SlaWrite\.timer"):
        inbox.record_sla("jira", "A", SlaWrite(timer="later"))
    inbox.record_sla("jira", "B", SlaWrite(timer=CLEAR_TIMER))
    assert [t.ticket for t in inbox.sla_timers()] == ["D", "C"]


def test_due_timers_are_leased_once_and_retaken_after_the_lease(
    inbox: Inbox, clock: FakeClock
) -> None:
    clock.now = T0
    inbox.set_timer(timer("A", T0 + 10))
    inbox.set_timer(timer("B", T0 + 20))
    assert inbox.next_timer_in() == 10
    assert inbox.claim_due_timers(lease_seconds=5) == []
    clock.now = T0 + 15
    first = inbox.claim_due_timers(lease_seconds=5)
    assert [t.ticket for t in first] == ["A"] and first[0].lease_token
    assert inbox.claim_due_timers(lease_seconds=5) == []  # leased: nobody else gets it
    assert inbox.next_timer_in() == 5                      # B at +20, A's lease at +20
    clock.now = T0 + 21
    again = inbox.claim_due_timers(lease_seconds=5)
    assert [t.ticket for t in again] == ["A", "B"]
    assert again[0].lease_token != first[0].lease_token
    assert inbox.enqueue_due_timers(first) == []  # the old holder's lease was taken over


def test_a_due_timer_becomes_one_event_of_its_ticket(inbox: Inbox, clock: FakeClock) -> None:
    clock.now = T0 + 61
    inbox.set_timer(timer("T-1", T0 + 60))
    claimed = inbox.claim_due_timers(lease_seconds=5)
    assert [t.ticket for t in inbox.enqueue_due_timers(claimed)] == ["T-1"]
    after = inbox.sla_timer("jira", "T-1")
    assert after is not None and after.due_at is None and after.lease_token is None
    [event] = inbox.events_of("jira", "T-1")
    assert event.event_type == SLA_DUE_EVENT
    due_ms = int((T0 + 60) * 1000)
    assert event.delivery_id == due_delivery_id("T-1", T0 + 60) == f"sla-due:T-1:{due_ms}"
    assert event.payload == {"tierdesk": SLA_DUE_EVENT, "ticket": "T-1", "due_at": T0 + 60,
                             "clock": "resolution", "fraction": 0.75}
    claim = inbox.claim(lease_seconds=30)
    assert claim is not None and claim.ticket == "T-1" and len(claim.events) == 1
    # Another loop (a replica, or this one restarted) enqueues the same due instant: no event.
    inbox.set_timer(timer("T-1", T0 + 60))
    assert inbox.enqueue_due_timers(inbox.claim_due_timers(lease_seconds=5)) == []
    assert len(inbox.events_of("jira", "T-1")) == 1


def test_a_timer_reset_while_claimed_keeps_its_new_due_time(
    inbox: Inbox, clock: FakeClock
) -> None:
    clock.now = T0 + 61
    inbox.set_timer(timer("T-1", T0 + 60))
    claimed = inbox.claim_due_timers(lease_seconds=5)
    inbox.set_timer(timer("T-1", T0 + 900))  # the ticket's work computed a new one meanwhile
    assert inbox.enqueue_due_timers(claimed) == []
    kept = inbox.sla_timer("jira", "T-1")
    assert kept is not None and kept.due_at == T0 + 900
    assert inbox.events_of("jira", "T-1") == []


def test_a_due_event_keeps_a_tickets_backoff(inbox: Inbox, clock: FakeClock) -> None:
    clock.now = T0
    inbox.enqueue(env("d1"), {})
    claim = inbox.claim(lease_seconds=30)
    assert claim is not None
    inbox.retry(claim, error="503", delay=100, max_attempts=5)
    clock.now = T0 + 61
    inbox.set_timer(timer("T-1", T0 + 60))
    assert len(inbox.enqueue_due_timers(inbox.claim_due_timers(lease_seconds=5))) == 1
    assert inbox.claim(lease_seconds=30) is None  # still backing off
    clock.now = T0 + 101
    claim = inbox.claim(lease_seconds=30)
    assert claim is not None and [e.event_type for e in claim.events] == [
        "jira:issue_updated", SLA_DUE_EVENT]


def test_migration_5_adds_the_sla_tables_to_a_version_4_database(db_url: str) -> None:
    box = Inbox.connect(db_url)
    box.enqueue(env("d1"), {})
    with box.engine.begin() as conn:
        for table in ("tierdesk_sla_marks", "tierdesk_sla_timers", "tierdesk_sla_fired",
                      "tierdesk_sla_notices"):
            conn.execute(sa.text(f"DROP TABLE {table}"))
        conn.execute(schema_version.update().values(version=4))
    box.close()
    again = Inbox.connect(db_url)
    assert again.migrate() == SCHEMA_VERSION == 7
    names = set(sa.inspect(again.engine).get_table_names())
    assert {"tierdesk_sla_marks", "tierdesk_sla_timers", "tierdesk_sla_fired",
            "tierdesk_sla_notices"} <= names
    notice_columns = {c["name"] for c in sa.inspect(again.engine).get_columns(
        "tierdesk_sla_notices")}
    assert notice_columns == {"id", "vendor", "ticket", "notice_key", "url", "body",
                              "created_at", "attempts", "next_attempt_at", "sent_at",
                              "last_error"}
    assert again.counts() == {"pending": 1}
    again.set_timer(timer())
    assert again.sla_timer("jira", "T-1") is not None
    again.close()


def test_concurrent_loops_enqueue_each_due_timer_once(db_url: str, clock: FakeClock) -> None:
    """Four loops (threads, each its own Inbox, as replicas are) race over 200 due timers:
    every timer becomes exactly one event."""
    import threading

    clock.now = T0 + 100
    boxes = [Inbox.connect(db_url, clock=clock) for _ in range(4)]
    for i in range(200):
        boxes[0].set_timer(timer(f"T-{i}", T0 + i % 50))
    enqueued: list[str] = []
    lock = threading.Lock()

    def loop(box: Inbox) -> None:
        for _ in range(40):
            got = box.enqueue_due_timers(box.claim_due_timers(lease_seconds=30, limit=7))
            with lock:
                enqueued.extend(t.ticket for t in got)

    threads = [threading.Thread(target=loop, args=(b,)) for b in boxes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(enqueued) == sorted(f"T-{i}" for i in range(200))
    assert boxes[0].counts() == {"pending": 200}
    for box in boxes:
        box.close()


def test_timers_due_in_the_same_instant_are_enqueued_once_in_one_batch(
    inbox: Inbox, clock: FakeClock
) -> None:
    """250 timers due in the same instant (more than one statement chunk): one claim, one
    enqueue; each becomes exactly one event of its ticket, each timer's due instant is cleared,
    and a second loop enqueueing the same instants adds nothing."""
    clock.now = T0
    for i in range(250):
        inbox.set_timer(timer(f"T-{i}", T0 + 60))
    inbox.set_timer(timer("later", T0 + 600))
    clock.now = T0 + 60.5
    claimed = inbox.claim_due_timers(lease_seconds=5, limit=300)
    assert len(claimed) == 250 and len({t.lease_token for t in claimed}) == 1
    inbox.set_timer(timer("T-7", T0 + 900))  # re-set while claimed: its new instant stands
    done = inbox.enqueue_due_timers(claimed)
    assert [t.ticket for t in done] == [f"T-{i}" for i in range(250) if i != 7]
    assert inbox.counts() == {"pending": 249}
    for i in (0, 199, 200, 249):
        [event] = inbox.events_of("jira", f"T-{i}")
        assert event.delivery_id == due_delivery_id(f"T-{i}", T0 + 60)
        after = inbox.sla_timer("jira", f"T-{i}")
        assert after is not None and after.due_at is None and after.lease_token is None
    kept = inbox.sla_timer("jira", "T-7")
    assert kept is not None and kept.due_at == T0 + 900 and inbox.events_of("jira", "T-7") == []
    assert inbox.next_timer_in() == pytest.approx(539.5)
    # The same instants set again (a loop restarted after SIGKILL, a replica): the delivery ids
    # dedupe all but T-7, whose due instant was never enqueued.
    for i in range(250):
        inbox.set_timer(timer(f"T-{i}", T0 + 60))
    again = inbox.enqueue_due_timers(inbox.claim_due_timers(lease_seconds=5, limit=300))
    assert [t.ticket for t in again] == ["T-7"]
    assert inbox.counts() == {"pending": 250}
    assert all(len(inbox.events_of("jira", f"T-{i}")) == 1 for i in range(250))


def test_the_timer_loop_wakes_the_workers_once_per_batch(inbox: Inbox, clock: FakeClock) -> None:
    from webhooks.sla_work import TimerLoop

    clock.now = T0
    for i in range(5):
        inbox.set_timer(timer(f"T-{i}", T0 + 10))
    wakes: list[int] = []
    loop = TimerLoop(inbox, wake_workers=lambda: wakes.append(1), batch=3)
    clock.now = T0 + 11
    assert loop.run_once() == 3 and loop.run_once() == 2 and loop.run_once() == 0
    assert len(wakes) == 2 and inbox.counts() == {"pending": 5}


def test_next_timer_in_seeks_the_lease_due_index(tmp_path: object) -> None:
    """On SQLite, both of next_timer_in's queries are searches of ix_tierdesk_sla_timers_lease_due
    (not scans of every timer)."""
    box = Inbox.connect(f"sqlite:///{tmp_path}/inbox.db")
    for query in box.next_timer_queries():
        sql = str(query.compile(box.engine, compile_kwargs={"literal_binds": True}))
        with box.engine.connect() as conn:
            plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
        assert "SEARCH" in plan and "ix_tierdesk_sla_timers_lease_due" in plan, plan
    box.close()


def test_next_timer_in_counts_leased_and_expired_leases(inbox: Inbox, clock: FakeClock) -> None:
    """The soonest of: an unleased timer's due instant, a leased one's lease end (or its due
    instant when that is later)."""
    clock.now = T0
    assert inbox.next_timer_in() is None
    inbox.set_timer(timer("A", T0 + 1))
    inbox.set_timer(timer("B", T0 + 50))
    inbox.set_timer(timer("C", None))
    assert inbox.next_timer_in() == 1
    clock.now = T0 + 2
    [a] = inbox.claim_due_timers(lease_seconds=30)
    assert a.ticket == "A" and inbox.next_timer_in() == 30  # A's lease ends at +32
    clock.now = T0 + 40                                     # A's lease expired: due now
    assert inbox.next_timer_in() == 0


def test_migration_6_indexes_the_timers_of_a_version_5_database(db_url: str) -> None:
    box = Inbox.connect(db_url)
    box.set_timer(timer())
    with box.engine.begin() as conn:
        conn.execute(sa.text("DROP INDEX ix_tierdesk_sla_timers_lease_due"))
        conn.execute(schema_version.update().values(version=5))
    box.close()
    again = Inbox.connect(db_url)
    names = {i["name"] for i in sa.inspect(again.engine).get_indexes("tierdesk_sla_timers")}
    assert "ix_tierdesk_sla_timers_lease_due" in names
    assert again.migrate() == SCHEMA_VERSION == 7
    assert again.next_timer_in() is not None and again.sla_timer("jira", "T-1") is not None
    again.close()


def test_prune_deletes_finished_notices_and_keeps_the_history(
    inbox: Inbox, clock: FakeClock
) -> None:
    """Retention deletes SLA notices that were sent, or given up, before the cut-off; pending
    ones, newer ones, the history marks and the fired keys stay (the clocks are computed from
    them, and a fired key kept is what stops a threshold firing again)."""
    from webhooks.inbox.records import Pruned
    from webhooks.inbox.schema import sla_notices

    def notice(key: str) -> Notice:
        return Notice(notice_key=key, url="https://hooks.example/x", body={"text": key})

    clock.now = T0
    inbox.record_sla("jira", "T-1", SlaWrite(
        marks=(SlaMark("created", T0), SlaMark("tier", T0, "L1")), fired=("k:sent", "k:gone"),
        notices=(notice("sent"), notice("gone"), notice("waiting"))))
    with inbox.engine.begin() as conn:
        conn.execute(sla_notices.update().where(sla_notices.c.notice_key.like("%sent"))
                     .values(sent_at=T0 + 5))
        conn.execute(sla_notices.update().where(sla_notices.c.notice_key.like("%gone"))
                     .values(next_attempt_at=float("inf"), last_error="HTTP 404"))
    clock.now = T0 + 40 * 86_400
    inbox.record_sla("jira", "T-2", SlaWrite(notices=(notice("recent"),)))
    with inbox.engine.begin() as conn:
        conn.execute(sla_notices.update().where(sla_notices.c.notice_key.like("%recent"))
                     .values(sent_at=clock.now))
    cutoff = clock.now - 30 * 86_400

    assert inbox.prune(older_than=cutoff, dry_run=True) == Pruned(events=0, decisions=0,
                                                                  notices=2)
    assert inbox.prune(older_than=cutoff, batch=1) == Pruned(events=0, decisions=0, notices=2)
    assert [n.notice_key.rsplit("|", 1)[-1] for n in inbox.notices_of("jira", "T-1")] == [
        "waiting"]
    assert len(inbox.notices_of("jira", "T-2")) == 1
    assert inbox.sla_fired_keys("jira", "T-1") == {"k:sent", "k:gone"}
    history = inbox.sla_history("jira", "T-1")
    assert history is not None and history.created_at == dt(T0)
    assert inbox.prune(older_than=cutoff) == Pruned(events=0, decisions=0, notices=0)


def test_due_tickets_are_claimed_before_an_ordinary_backlog(
    inbox: Inbox, clock: FakeClock
) -> None:
    """A breach escalation does not wait behind a backfill: a ticket holding a due event is
    claimed first, however long the ordinary tickets have waited; then the backlog, oldest
    first. A due ticket backing off after a failure waits for its backoff like any other."""
    clock.now = T0
    inbox.enqueue_many([(env(f"b{i}", f"B-{i}"), {}, None) for i in range(30)])
    clock.now = T0 + 5
    inbox.enqueue(env("late", "T-late"), {})
    inbox.set_timer(timer("T-due", T0 + 4))
    inbox.set_timer(timer("T-wait", T0 + 4))
    inbox.enqueue(env("w1", "T-wait"), {})
    first = inbox.claim(lease_seconds=30)
    assert first is not None and first.ticket == "B-0"
    clock.now = T0 + 6
    # T-wait fails and backs off before its due event is stored.
    waiting = inbox.claim(lease_seconds=30)
    assert waiting is not None and waiting.ticket == "B-1"
    inbox.release(waiting)
    enqueued = inbox.enqueue_due_timers(inbox.claim_due_timers(lease_seconds=5))
    assert sorted(t.ticket for t in enqueued) == ["T-due", "T-wait"]
    with inbox.engine.begin() as conn:
        conn.execute(sa.text("UPDATE tierdesk_tickets SET next_attempt_at = :at"
                             " WHERE ticket = 'T-wait'"), {"at": T0 + 100})
    due = inbox.claim(lease_seconds=30)
    assert due is not None and due.ticket == "T-due"
    assert [e.event_type for e in due.events] == [SLA_DUE_EVENT]
    inbox.complete(due, record=None)
    order = []
    while (claim := inbox.claim(lease_seconds=30)) is not None:
        order.append(claim.ticket)
        inbox.complete(claim, record=None)
    # The backlog in its own order: longest waiting first, then the ticket rows' order.
    assert order == [*sorted(f"B-{i}" for i in range(1, 30)), "T-late"]
    clock.now = T0 + 100
    # Its backoff over, the due ticket goes before a ticket that waited longer.
    inbox.enqueue(env("b-again", "B-3"), {})
    clock.now = T0 + 101
    inbox.enqueue(env("b-again2", "B-4"), {})
    claim = inbox.claim(lease_seconds=30)
    assert claim is not None and claim.ticket == "T-wait"
    assert sorted(e.event_type for e in claim.events) == ["jira:issue_updated", SLA_DUE_EVENT]
    inbox.complete(claim, record=None)
    with inbox.engine.begin() as conn:
        flags = dict(conn.execute(sa.text("SELECT ticket, sla_due FROM tierdesk_tickets"
                                          " WHERE ticket IN ('T-due', 'T-wait')")).all())
    assert flags == {"T-due": False, "T-wait": False}


def test_a_retried_due_event_keeps_its_place_ahead_of_the_backlog(
    inbox: Inbox, clock: FakeClock
) -> None:
    clock.now = T0 + 61
    inbox.set_timer(timer("T-due", T0 + 60))
    inbox.enqueue_due_timers(inbox.claim_due_timers(lease_seconds=5))
    claim = inbox.claim(lease_seconds=30)
    assert claim is not None and claim.ticket == "T-due"
    inbox.retry(claim, error="503", delay=1, max_attempts=5)
    inbox.enqueue_many([(env(f"b{i}", f"B-{i}"), {}, None) for i in range(5)])
    clock.now = T0 + 63
    again = inbox.claim(lease_seconds=30)
    assert again is not None and again.ticket == "T-due"


def test_migration_7_adds_due_first_claims_and_rearms_to_a_version_6_database(
    db_url: str, clock: FakeClock
) -> None:
    clock.now = T0 + 61
    box = Inbox.connect(db_url, clock=clock)
    box.enqueue(env("d1", "T-old"), {})
    box.set_timer(timer("T-due", T0 + 60))
    box.enqueue_due_timers(box.claim_due_timers(lease_seconds=5))
    with box.engine.begin() as conn:
        conn.execute(sa.text("DROP INDEX ix_tierdesk_tickets_sla_due"))
        conn.execute(sa.text("ALTER TABLE tierdesk_tickets DROP COLUMN sla_due"))
        conn.execute(sa.text("ALTER TABLE tierdesk_sla_timers DROP COLUMN rearms"))
        conn.execute(sa.text("ALTER TABLE tierdesk_sla_timers DROP COLUMN rearm_error"))
        conn.execute(schema_version.update().values(version=6))
    box.close()
    again = Inbox.connect(db_url, clock=clock)
    assert again.migrate() == SCHEMA_VERSION == 7
    names = {i["name"] for i in sa.inspect(again.engine).get_indexes("tierdesk_tickets")}
    assert "ix_tierdesk_tickets_sla_due" in names
    kept = again.sla_timer("jira", "T-due")
    assert kept is not None and (kept.rearms, kept.rearm_error) == (0, None)
    # The due event stored before the upgrade is claimed first, ahead of the older webhook.
    claim = again.claim(lease_seconds=30)
    assert claim is not None and claim.ticket == "T-due"
    again.dead_letter(claim, error="VendorRejected (HTTP 400): x")
    rearmed = again.sla_timer("jira", "T-due")
    assert rearmed is not None and rearmed.rearms == 1 and rearmed.due_at == T0 + 121
    again.close()


def test_a_dead_due_event_rearms_only_a_waiting_open_timer(inbox: Inbox, clock: FakeClock) -> None:
    """The store's rule: re-armed only when the timer still waits (no due instant, clocks
    open); a timer a decision set meanwhile, or a ticket with no open clock, is left alone."""
    clock.now = T0 + 61
    for key in ("T-1", "T-2", "T-3"):
        inbox.set_timer(timer(key, T0 + 60))
    inbox.enqueue_due_timers(inbox.claim_due_timers(lease_seconds=5))
    inbox.set_timer(timer("T-2", T0 + 500))  # a decision (another path) set it meanwhile
    inbox.clear_timer("jira", "T-3")  # solved: no clock open
    got = []
    while (claim := inbox.claim(lease_seconds=30)) is not None:
        got.append(inbox.dead_letter(claim, error="VendorRejected (HTTP 400): x"))
    assert [(r.ticket, r.due_at, r.rearms) for r in got if r is not None] == [
        ("T-1", T0 + 121, 1)]
    t2 = inbox.sla_timer("jira", "T-2")
    assert t2 is not None and t2.due_at == T0 + 500 and t2.rearms == 0
    assert inbox.sla_timer("jira", "T-3") is None
