"""The durable inbox on SQLite and PostgreSQL: dedupe, leases, ordering, coalescing, retries,
dead letters, vendor pauses, decision records and migrations."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from connectors.base import Envelope
from tests.webhooks.conftest import FakeClock
from webhooks.inbox.database import InboxError
from webhooks.inbox.migrations import SCHEMA_VERSION
from webhooks.inbox.records import DecisionRecord, Pruned
from webhooks.inbox.schema import schema_version
from webhooks.inbox.store import Inbox


def env(delivery: str, ticket: str | None = "T-1", *, vendor: str = "jira", handled: bool = True,
        occurred_at: int | None = None, actor: str | None = None) -> Envelope:
    return Envelope(vendor=vendor, event_type="jira:issue_updated", handled=handled,
                    ticket=ticket, delivery_id=delivery, actor=actor, occurred_at=occurred_at)


def test_enqueue_new_then_duplicate(inbox: Inbox) -> None:
    """The same vendor + delivery_id is stored once; the second enqueue answers False."""
    assert inbox.enqueue(env("d1"), {"n": 1}) is True
    assert inbox.enqueue(env("d1"), {"n": 2}) is False
    assert inbox.counts() == {"pending": 1}
    assert inbox.events_of("jira", "T-1")[0].payload == {"n": 1}


def test_same_delivery_id_other_vendor_is_distinct(inbox: Inbox) -> None:
    """Dedupe keys are per vendor."""
    assert inbox.enqueue(env("d1"), {}) and inbox.enqueue(env("d1", vendor="zendesk"), {})
    assert inbox.counts() == {"pending": 2}


def test_ignored_event_is_recorded_not_queued(inbox: Inbox) -> None:
    """A known event tierdesk does not act on is stored as ignored and never claimed."""
    assert inbox.enqueue(env("d1", None, handled=False), {"x": 1}) is True
    assert inbox.counts() == {"ignored": 1}
    assert inbox.claim(lease_seconds=30) is None


def test_raw_body_is_stored_as_received(inbox: Inbox) -> None:
    """When the raw body is given it is stored byte for byte (no re-encoding)."""
    raw = b'{"b": 1,   "a": "\xc3\xa9"}'
    inbox.enqueue(env("d1"), {"a": "é", "b": 1}, raw=raw)
    assert inbox.events_of("jira", "T-1")[0].payload_text == raw.decode()


def test_claim_coalesces_pending_events_in_arrival_order(inbox: Inbox) -> None:
    """One claim covers all pending events of a ticket, oldest first."""
    for i in range(3):
        inbox.enqueue(env(f"d{i}"), {"i": i})
    claim = inbox.claim(lease_seconds=30)
    assert claim is not None and claim.ticket == "T-1"
    assert [e.payload["i"] for e in claim.events] == [0, 1, 2]


def test_one_ticket_is_never_claimed_twice(inbox: Inbox) -> None:
    """While a lease is held, the ticket is not handed to another worker."""
    inbox.enqueue(env("d1"), {})
    assert inbox.claim(lease_seconds=30) is not None
    inbox.enqueue(env("d2"), {})  # new event for the held ticket
    assert inbox.claim(lease_seconds=30) is None


def test_tickets_are_claimed_oldest_first(inbox: Inbox, clock: FakeClock) -> None:
    """The ticket that has waited longest is claimed first."""
    inbox.enqueue(env("d1", "B"), {})
    clock.advance(1)
    inbox.enqueue(env("d2", "A"), {})
    first, second = inbox.claim(lease_seconds=30), inbox.claim(lease_seconds=30)
    assert first is not None and second is not None
    assert (first.ticket, second.ticket) == ("B", "A")


def test_expired_lease_is_taken_over(inbox: Inbox, clock: FakeClock) -> None:
    """A crashed worker's lease expires and another worker gets the ticket (marked claimed
    twice, so it reads fresh state)."""
    inbox.enqueue(env("d1"), {})
    first = inbox.claim(lease_seconds=30)
    assert first is not None and first.events[0].claims == 1
    clock.advance(31)
    second = inbox.claim(lease_seconds=30)
    assert second is not None and second.ticket == "T-1" and second.events[0].claims == 2


def test_stale_holder_cannot_clobber_new_lease(inbox: Inbox, clock: FakeClock) -> None:
    """Completing after losing the lease marks its events done but leaves the new lease alone."""
    inbox.enqueue(env("d1"), {})
    stale = inbox.claim(lease_seconds=30)
    assert stale is not None
    clock.advance(31)
    inbox.enqueue(env("d2"), {})
    fresh = inbox.claim(lease_seconds=30)
    assert fresh is not None
    assert inbox.complete(stale, record=None) is False
    state = inbox.ticket_state("jira", "T-1")
    assert state is not None and state["lease_token"] == fresh.token
    assert inbox.complete(fresh, record=None) is True
    assert inbox.counts() == {"done": 2}


def test_complete_keeps_note_key_and_newest_time(inbox: Inbox) -> None:
    """Completion stores the note posted and the newest occurred_at; events become done."""
    inbox.enqueue(env("d1", occurred_at=200), {})
    inbox.enqueue(env("d2", occurred_at=100), {})
    claim = inbox.claim(lease_seconds=30)
    assert claim is not None
    assert inbox.complete(claim, record=None, note_key="abcdef12") is True
    state = inbox.ticket_state("jira", "T-1")
    assert state is not None
    assert (state["last_note_key"], state["last_occurred_at"], state["pending"]) == (
        "abcdef12", 200, False)
    inbox.enqueue(env("d3", occurred_at=150), {})
    claim = inbox.claim(lease_seconds=30)
    assert claim is not None and claim.last_note_key == "abcdef12"
    inbox.complete(claim, record=None)
    state = inbox.ticket_state("jira", "T-1")
    assert state is not None and state["last_occurred_at"] == 200  # never goes back
    assert state["last_note_key"] == "abcdef12"  # kept when no new note was posted


def test_event_arriving_during_processing_stays_pending(inbox: Inbox) -> None:
    """An event stored while its ticket is held is processed by the next claim, not lost."""
    inbox.enqueue(env("d1"), {})
    claim = inbox.claim(lease_seconds=30)
    assert claim is not None
    inbox.enqueue(env("d2"), {"late": True})
    inbox.complete(claim, record=None)
    again = inbox.claim(lease_seconds=30)
    assert again is not None and [e.delivery_id for e in again.events] == ["d2"]


def test_retry_waits_for_the_delay(inbox: Inbox, clock: FakeClock) -> None:
    """A failed attempt is counted and the ticket is not claimable before its delay passes."""
    inbox.enqueue(env("d1"), {})
    claim = inbox.claim(lease_seconds=30)
    assert claim is not None
    assert inbox.retry(claim, error="VendorUnavailable: 503", delay=10, max_attempts=8) == []
    assert inbox.claim(lease_seconds=30) is None
    clock.advance(9.9)
    assert inbox.claim(lease_seconds=30) is None
    clock.advance(0.2)
    again = inbox.claim(lease_seconds=30)
    assert again is not None and again.events[0].attempts == 1
    assert again.events[0].last_error == "VendorUnavailable: 503"


def test_new_event_does_not_cut_a_backoff_short(inbox: Inbox, clock: FakeClock) -> None:
    """A ticket in backoff keeps waiting even when another event for it arrives."""
    inbox.enqueue(env("d1"), {})
    claim = inbox.claim(lease_seconds=30)
    assert claim is not None
    inbox.retry(claim, error="e", delay=60, max_attempts=8)
    inbox.enqueue(env("d2"), {})
    assert inbox.claim(lease_seconds=30) is None
    clock.advance(61)
    again = inbox.claim(lease_seconds=30)
    assert again is not None and len(again.events) == 2


def test_max_attempts_makes_dead_letters(inbox: Inbox, clock: FakeClock) -> None:
    """After max_attempts failures an event becomes a dead letter with its last error."""
    inbox.enqueue(env("d1"), {})
    for attempt in range(1, 4):
        claim = inbox.claim(lease_seconds=30)
        assert claim is not None
        dead = inbox.retry(claim, error=f"fail {attempt}", delay=0, max_attempts=3)
        clock.advance(1)
    assert len(dead) == 1
    assert inbox.claim(lease_seconds=30) is None
    letters = inbox.dead_letters()
    assert [(e.delivery_id, e.attempts, e.last_error) for e in letters] == [("d1", 3, "fail 3")]


def test_dead_letter_now_and_replay(inbox: Inbox) -> None:
    """A rejected event is dead at once; replay makes it pending with a fresh attempt count."""
    inbox.enqueue(env("d1"), {})
    claim = inbox.claim(lease_seconds=30)
    assert claim is not None
    inbox.dead_letter(claim, error="VendorRejected (HTTP 400): Field 'x' cannot be set")
    assert inbox.depth().dead_letters == 1
    assert inbox.replay([claim.events[0].id]) == 1
    again = inbox.claim(lease_seconds=30)
    assert again is not None and again.events[0].attempts == 0
    assert again.events[0].claims == 2  # the earlier attempt may have written: read fresh


def test_replay_all(inbox: Inbox) -> None:
    """replay() with no ids replays every dead letter, across tickets."""
    for i, t in enumerate(["A", "B"]):
        inbox.enqueue(env(f"d{i}", t), {})
        claim = inbox.claim(lease_seconds=30)
        assert claim is not None
        inbox.dead_letter(claim, error="x")
    assert inbox.replay() == 2
    assert inbox.replay() == 0
    assert inbox.depth().pending_events == 2


def test_vendor_pause_blocks_only_that_vendor(inbox: Inbox, clock: FakeClock) -> None:
    """A rate-limited vendor's tickets are not claimed until the pause ends; others are."""
    inbox.enqueue(env("d1", "J-1"), {})
    inbox.enqueue(env("z1", "77", vendor="zendesk"), {})
    inbox.pause_vendor("jira", until=clock.now + 30, reason="429")
    # A later, shorter pause never shortens the first.
    inbox.pause_vendor("jira", until=clock.now + 5, reason="shorter")
    assert inbox.paused_until("jira") == clock.now + 30
    claim = inbox.claim(lease_seconds=30)
    assert claim is not None and claim.vendor == "zendesk"
    assert inbox.claim(lease_seconds=30) is None
    clock.advance(31)
    claim = inbox.claim(lease_seconds=30)
    assert claim is not None and claim.vendor == "jira"


def test_claim_only_given_vendors(inbox: Inbox) -> None:
    """A worker without a Zendesk connector never claims Zendesk tickets."""
    inbox.enqueue(env("z1", "77", vendor="zendesk"), {})
    assert inbox.claim(lease_seconds=30, vendors=["jira"]) is None
    assert inbox.claim(lease_seconds=30, vendors=["zendesk"]) is not None


def test_release_hands_back_without_counting(inbox: Inbox) -> None:
    """A released claim is claimable at once with no attempt and no claim counted."""
    inbox.enqueue(env("d1"), {})
    claim = inbox.claim(lease_seconds=30)
    assert claim is not None
    inbox.release(claim)
    again = inbox.claim(lease_seconds=30)
    assert again is not None and again.events[0].attempts == 0 and again.events[0].claims == 1


def test_decision_records_newest_first(inbox: Inbox, clock: FakeClock) -> None:
    """Decision records are kept per ticket and listed newest first."""
    for i, outcome in enumerate(["applied", "unchanged"]):
        inbox.enqueue(env(f"d{i}"), {})
        claim = inbox.claim(lease_seconds=30)
        assert claim is not None
        inbox.complete(claim, record=DecisionRecord(
            vendor="jira", ticket="T-1", outcome=outcome, event_ids=(claim.events[0].id,),
            policy_digest="f" * 64, tier_before="L0", tier_after="L1",
            reasons=("rule x",), calls=({"method": "PUT", "path": "/p", "status": 204,
                                         "purpose": "apply"},),
            decision={"tier": "L1"}))
        clock.advance(1)
    history = inbox.history("jira", "T-1")
    assert [r.outcome for r in history] == ["unchanged", "applied"]
    assert history[1].calls[0]["status"] == 204 and history[1].reasons == ("rule x",)
    assert history[1].decision == {"tier": "L1"}


def test_depth_counts(inbox: Inbox) -> None:
    """depth() reports pending events per vendor, ready tickets and dead letters."""
    inbox.enqueue(env("d1", "A"), {})
    inbox.enqueue(env("d2", "A"), {})
    inbox.enqueue(env("z1", "9", vendor="zendesk"), {})
    depth = inbox.depth()
    assert (depth.pending_events, depth.ready_tickets, dict(depth.by_vendor)) == (
        3, 2, {"jira": 2, "zendesk": 1})


def test_migrations_are_idempotent(db_url: str) -> None:
    """Connecting again (another replica, a restart) keeps the schema and the data."""
    first = Inbox.connect(db_url)
    first.enqueue(env("d1"), {})
    second = Inbox.connect(db_url)
    assert second.migrate() == SCHEMA_VERSION
    assert second.counts() == {"pending": 1}
    first.close()
    second.close()


def test_newer_schema_is_refused(db_url: str) -> None:
    """A database migrated by a newer tierdesk is refused with a clear message."""
    box = Inbox.connect(db_url)
    with box.engine.begin() as conn:
        conn.execute(schema_version.update().values(version=SCHEMA_VERSION + 1))
    with pytest.raises(InboxError, match="newer than this tierdesk"):
        box.migrate()
    box.close()


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("sqlite://", "in-memory SQLite inbox would lose"),
        ("mysql://x@y/z", "unsupported database"),
        ("not a url", "not a database URL"),
    ],
)
def test_bad_database_urls(url: str, why: str) -> None:
    """Unusable TIERDESK_DATABASE_URL values are refused with what to use instead."""
    with pytest.raises(InboxError, match=why):
        Inbox.connect(url)


def test_unreachable_postgres_is_reported() -> None:
    """An unreachable PostgreSQL gives a one-line error naming the (password-less) URL."""
    with pytest.raises(InboxError, match="cannot open the inbox database"):
        Inbox.connect("postgresql://nobody:pw@127.0.0.1:1/none?connect_timeout=2")


def test_sqlite_uses_wal(tmp_path: object) -> None:
    """The SQLite inbox runs in WAL mode with full sync (committed means on disk)."""
    box = Inbox.connect(f"sqlite:///{tmp_path}/w.db")
    with box.engine.connect() as conn:
        assert conn.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(sa.text("PRAGMA synchronous")).scalar() == 2
    box.close()


def test_migration_2_adds_known_at_to_a_version_1_database(db_url: str) -> None:
    """A database at schema version 1 (no tickets.known_at) is migrated on connect, data kept."""
    box = Inbox.connect(db_url)
    box.enqueue(env("d1"), {})
    with box.engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE tierdesk_tickets DROP COLUMN known_at"))
        conn.execute(schema_version.update().values(version=1))
    box.close()
    again = Inbox.connect(db_url)
    columns = {c["name"] for c in sa.inspect(again.engine).get_columns("tierdesk_tickets")}
    assert "known_at" in columns and again.migrate() == SCHEMA_VERSION == 7
    claim = again.claim(lease_seconds=30)
    assert claim is not None and claim.known_at is None
    again.close()


def _record(ticket: str) -> DecisionRecord:
    return DecisionRecord(vendor="jira", ticket=ticket, outcome="applied", event_ids=())


def test_prune_deletes_only_old_finished_work(inbox: Inbox, clock: FakeClock) -> None:
    """Processed and ignored events and decision records older than the cut-off go, in
    batches; pending events, dead letters, newer rows and the tickets' state stay."""
    for i in range(5):  # five old processed tickets, each with a decision record
        inbox.enqueue(env(f"old{i}", f"T-{i}"), {})
        claim = inbox.claim(lease_seconds=30)
        assert claim is not None
        inbox.complete(claim, record=_record(claim.ticket), note_key=f"note{i}")
    inbox.enqueue(env("ign", None, handled=False), {})
    inbox.enqueue(env("dead", "T-dead"), {})
    claim = inbox.claim(lease_seconds=30)
    assert claim is not None
    inbox.dead_letter(claim, error="VendorRejected (HTTP 400)", record=_record("T-dead"))
    inbox.enqueue(env("waiting", "T-wait"), {})  # old but still pending (vendor down)
    clock.advance(10 * 86_400)
    inbox.enqueue(env("new", "T-0"), {})
    cutoff = clock.now - 86_400

    assert inbox.prune(older_than=cutoff, dry_run=True) == Pruned(events=6, decisions=6)
    assert inbox.counts() == {"done": 5, "ignored": 1, "dead": 1, "pending": 2}
    assert inbox.prune(older_than=cutoff, batch=2) == Pruned(events=6, decisions=6)
    assert inbox.counts() == {"dead": 1, "pending": 2}
    assert [e.delivery_id for e in inbox.dead_letters()] == ["dead"]
    state = inbox.ticket_state("jira", "T-3")
    assert state is not None and state["last_note_key"] == "note3"
    assert inbox.history("jira", "T-3") == []
    assert inbox.prune(older_than=cutoff) == Pruned(events=0, decisions=0)


def test_pruned_delivery_redelivered_is_processed_again(inbox: Inbox, clock: FakeClock) -> None:
    """After its row is pruned, a late redelivery of the same delivery is stored again (the
    decision it leads to is idempotent, and the ticket's note key is still known)."""
    inbox.enqueue(env("d1"), {})
    claim = inbox.claim(lease_seconds=30)
    assert claim is not None
    inbox.complete(claim, record=None, note_key="abcdef12")
    clock.advance(100)
    inbox.prune(older_than=clock.now)
    assert inbox.enqueue(env("d1"), {}) is True
    again = inbox.claim(lease_seconds=30)
    assert again is not None and again.last_note_key == "abcdef12"


def test_migration_3_indexes_an_older_database(db_url: str) -> None:
    """A database at schema version 2 gets the pruning indexes on connect, data kept."""
    box = Inbox.connect(db_url)
    box.enqueue(env("d1"), {})
    with box.engine.begin() as conn:
        conn.execute(sa.text("DROP INDEX ix_tierdesk_events_received"))
        conn.execute(sa.text("DROP INDEX ix_tierdesk_decisions_created"))
        conn.execute(schema_version.update().values(version=2))
    box.close()
    again = Inbox.connect(db_url)
    names = {i["name"] for t in ("tierdesk_events", "tierdesk_decisions")
             for i in sa.inspect(again.engine).get_indexes(t)}
    assert {"ix_tierdesk_events_received", "ix_tierdesk_decisions_created"} <= names
    assert again.migrate() == SCHEMA_VERSION and again.counts() == {"pending": 1}
    again.close()


def test_raw_body_in_another_encoding_is_stored_parsed(inbox: Inbox) -> None:
    """JSON that arrived as UTF-16 (legal JSON, not UTF-8) is stored as its parsed payload."""
    raw = '{"a": "é"}'.encode("utf-16")
    inbox.enqueue(env("d1"), {"a": "é"}, raw=raw)
    assert inbox.events_of("jira", "T-1")[0].payload == {"a": "é"}


@pytest.mark.postgres
def test_completion_never_clears_the_pending_flag_of_an_event_committed_meanwhile(
    pg_url: str, clock: FakeClock
) -> None:
    """A receiver's transaction stores a new event of a ticket (and sets its pending flag)
    while a worker completes that ticket: the worker waits on the ticket's row lock, and once
    the receiver commits, the new event stays claimable. Without the lock taken in its own
    statement first (statements.LOCK_TICKET), the completing UPDATE computed `pending` from a
    snapshot older than the receiver's commit and cleared the flag: the event was never
    claimed (found by tests/replicas on PostgreSQL)."""
    import threading
    import time

    from webhooks.inbox.database import normalize_url
    from webhooks.inbox.schema import events, tickets

    inbox = Inbox.connect(pg_url, clock=clock)
    engine = sa.create_engine(normalize_url(pg_url))
    try:
        inbox.enqueue(env("d1"), {})
        claim = inbox.claim(lease_seconds=30)
        assert claim is not None
        receiver = engine.connect()
        tx = receiver.begin()
        receiver.execute(events.insert().values(
            vendor="jira", delivery_id="d2", event_type="jira:issue_updated", ticket="T-1",
            status="pending", received_at=clock(), payload="{}", attempts=0, claims=0))
        receiver.execute(tickets.update().where(tickets.c.id == claim.ticket_row)
                         .values(pending=True))
        done: list[bool] = []
        worker = threading.Thread(target=lambda: done.append(inbox.complete(claim, record=None)))
        worker.start()
        with engine.connect() as watch:  # until the worker waits on the row lock (bounded)
            for _ in range(200):
                waiting = watch.execute(sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND datname = current_database()")).scalar_one()
                if waiting:
                    break
                time.sleep(0.05)
        assert waiting, "the completing worker never waited on the ticket's lock"
        tx.commit()
        receiver.close()
        worker.join(timeout=30)
        assert done == [True]
        state = inbox.ticket_state("jira", "T-1")
        assert state is not None and state["pending"] is True
        again = inbox.claim(lease_seconds=30)
        assert again is not None and [e.delivery_id for e in again.events] == ["d2"]
    finally:
        engine.dispose()
        inbox.close()
