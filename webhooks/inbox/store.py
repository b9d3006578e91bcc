"""The inbox store (`Inbox`): events, per-ticket leases, retries, dead letters, decision records.

One schema on SQLite (WAL, the single-host default) and PostgreSQL (several replicas), written
with SQLAlchemy Core. State that must survive a restart lives here, never in process memory.

Claiming is one UPDATE ... WHERE id = (SELECT ... LIMIT 1 [FOR UPDATE SKIP LOCKED]) RETURNING:
atomic on SQLite (one writer at a time, BEGIN IMMEDIATE) and on PostgreSQL (row locks), so two
workers never hold one ticket. A claim carries a random token; completing or retrying a claim
whose lease has expired and been taken over does not clobber the new holder's lease.
"""


from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection, Engine

from connectors.base import Envelope
from webhooks.inbox import statements as st
from webhooks.inbox.database import (
    SQLITE_TICKET_UPSERT,
    InboxError,
    make_engine,
    sqlite_insert_events,
    without_replays,
)
from webhooks.inbox.migrations import migrate
from webhooks.inbox.reads import Clock, InboxReads
from webhooks.inbox.records import (
    Claim,
    DecisionRecord,
    Delivery,
    SlaRearm,
    SlaWrite,
    event_row,
    stored_event,
)
from webhooks.inbox.schema import (
    DEAD,
    PENDING,
    SLA_DUE_EVENT,
    UNFINISHED_ERROR,
    events,
    tickets,
    vendor_pauses,
)
from webhooks.inbox.sla_store import SlaStore
from webhooks.inbox.upkeep import InboxUpkeep

#: Told of a timer re-armed after a dead letter (`Inbox.retry`, `dead_letter`, `claim`).
RearmListener = Callable[[SlaRearm], None]


class Inbox(InboxReads, SlaStore, InboxUpkeep):
    """The durable inbox over one database. Thread-safe: every method runs its own transaction."""

    def __init__(self, engine: Engine, *, clock: Clock = time.time) -> None:
        super().__init__(engine, clock=clock)
        self._insert: Any = pg_dialect.insert if self.dialect == "postgresql" else (
            sqlite_dialect.insert
        )
        # SQLite has one writer at a time. Threads of this process queue on a lock instead of
        # on SQLite's busy handler, which sleeps in steps of up to 100 ms and would wreck
        # latency; other processes (a split worker) still wait through busy_timeout.
        self._write_lock: AbstractContextManager[Any] = (
            threading.Lock() if self.dialect == "sqlite" else nullcontext()
        )

    @classmethod
    def connect(cls, url: str, *, clock: Clock = time.time) -> Inbox:
        """Open (and create or migrate) the inbox at `url`."""
        engine = make_engine(url)
        inbox = cls(engine, clock=clock)
        try:
            inbox.migrate()
        except sa.exc.OperationalError as exc:
            engine.dispose()
            raise InboxError(
                f"cannot open the inbox database {engine.url.render_as_string(hide_password=True)}:"
                f" {str(exc.orig).strip().splitlines()[0] if exc.orig else exc}"
            ) from None
        return inbox

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        with self._write_lock, self.engine.begin() as conn:
            yield conn

    def migrate(self) -> int:
        """Apply pending migrations; return the schema version. Safe with several replicas."""
        with self._tx() as conn:
            return migrate(conn)

    # ------------------------------------------------------------------ receiving

    def enqueue(
        self, envelope: Envelope, payload: Mapping[str, Any], *, raw: bytes | None = None
    ) -> bool:
        """Store one delivery; True if new, False for a duplicate (same vendor + delivery_id).

        `raw` is the body as received; stored as is when it is UTF-8 (sparing a re-encoding),
        else the payload is stored re-encoded."""
        return self.enqueue_many([(envelope, payload, raw)])[0]

    def enqueue_many(self, items: Sequence[Delivery]) -> list[bool]:
        """Store several deliveries in one transaction (one disk sync); True per new one.

        Two statements whatever the number of items: a multi-row insert of the events that
        skips known (vendor, delivery_id) pairs and returns the new ones, then one upsert of the
        distinct tickets that received a handled event."""
        if not items:
            return []
        now = self.clock()
        rows: list[dict[str, Any]] = []
        keys: list[tuple[str, str]] = []
        seen: set[tuple[str, str]] = set()
        first: list[bool] = []
        for envelope, payload, raw in items:
            row = event_row(envelope, payload, raw, now)
            key = (row["vendor"], row["delivery_id"])
            keys.append(key)
            first.append(key not in seen)  # a repeat inside one batch is a duplicate too
            if key not in seen:
                seen.add(key)
                rows.append(row)
        insert = (
            self._insert(events)
            .on_conflict_do_nothing(index_elements=["vendor", "delivery_id"])
            .returning(events.c.vendor, events.c.delivery_id)
        )
        with self._tx() as conn:
            rows = without_replays(conn, self.dialect, rows)
            if not rows:
                new: set[tuple[str, str]] = set()
            elif self.dialect == "sqlite":
                new = sqlite_insert_events(conn, rows)
            else:
                new = {(r.vendor, r.delivery_id) for r in conn.execute(insert, rows).all()}
            touched = sorted({
                (row["vendor"], row["ticket"])
                for row in rows
                if row["status"] == PENDING and (row["vendor"], row["delivery_id"]) in new
            })
            if touched and self.dialect == "sqlite":
                conn.exec_driver_sql(SQLITE_TICKET_UPSERT, [(v, t, now, now) for v, t in touched])
            elif touched:
                upsert = self._insert(tickets)
                # A ticket already waiting (backoff after a failure) keeps its next_attempt_at.
                conn.execute(
                    upsert.on_conflict_do_update(
                        index_elements=["vendor", "ticket"],
                        set_={"pending": True, "updated_at": upsert.excluded.updated_at},
                    ),
                    [
                        {"vendor": v, "ticket": t, "pending": True, "next_attempt_at": now,
                         "attempts": 0, "updated_at": now}
                        for v, t in touched
                    ],
                )
        return [is_first and key in new for key, is_first in zip(keys, first, strict=True)]

    # ------------------------------------------------------------------ working

    def claim(
        self,
        *,
        lease_seconds: float,
        vendors: Sequence[str] | None = None,
        max_events: int = 200,
        max_unfinished: int | None = None,
        on_rearm: RearmListener | None = None,
    ) -> Claim | None:
        """Lease the ticket that has waited longest among those with pending events, whose
        backoff has passed and whose vendor is not paused; None when there is none. Tickets
        with a pending SLA due event (`tickets.sla_due`) come first: a breach escalation never
        waits behind an ordinary backlog (a 10,000-ticket backfill).

        Poison pills (`max_unfinished`, the worker's MAX_ATTEMPTS): a claim that ends neither in
        a counted attempt (`retry`, `dead_letter`), nor done, nor handed back (`release`) means
        the evaluation crashed or hung the process. An event with `max_unfinished` such claims
        is dead-lettered here, in the claiming transaction, before anything runs on it again.
        Once any event of the ticket has two unfinished claims, its events are handed out one
        at a time, oldest first, so that only the event that never finishes accumulates
        claims while the ticket's other events are evaluated."""
        now = self.clock()
        token = secrets.token_hex(16)
        until = now + lease_seconds
        stmt = st.claim_ticket(self.dialect, None if vendors is None else tuple(vendors))
        rearm: SlaRearm | None = None
        given_back: Claim | None = None
        with self._tx() as conn:
            row = conn.execute(stmt, {"p_now": now, "p_token": token, "p_until": until}).first()
            if row is None:
                return None
            found = conn.execute(st.pending_events(max_events),
                                 {"p_vendor": row.vendor, "p_ticket": row.ticket}).all()
            poisoned: list[int] = []
            if max_unfinished is not None and found:
                poisoned = [r.id for r in found if r.claims - r.attempts >= max_unfinished]
                for r in found:
                    if r.id in poisoned:
                        conn.execute(
                            events.update()
                            .where(events.c.id == r.id, events.c.status == PENDING)
                            .values(status=DEAD, finished_at=now,
                                    last_error=UNFINISHED_ERROR.format(claims=r.claims))
                        )
                if poisoned:
                    rearm = self._rearm_dead(
                        conn, row.vendor, row.ticket, [r for r in found if r.id in poisoned],
                        UNFINISHED_ERROR.format(claims=max_unfinished), now)
                found = [r for r in found if r.id not in poisoned]
                suspect = min(2, max(1, max_unfinished - 1))
                if any(r.claims - r.attempts >= suspect for r in found):
                    found = found[:1]  # one at a time until the poison pill is found
            if found:
                conn.execute(st.COUNT_CLAIMS, {"p_ids": [r.id for r in found]})
            if not found and poisoned:
                # Every event handed out would have been a poison pill: give the ticket back
                # (other events, if any beyond max_events, are claimable at once).
                conn.execute(
                    tickets.update()
                    .where(tickets.c.id == row.id, tickets.c.lease_token == token)
                    .values(
                        lease_token=None, lease_until=None, next_attempt_at=now,
                        pending=sa.select(events.c.id).where(
                            events.c.vendor == row.vendor, events.c.ticket == row.ticket,
                            events.c.status == PENDING).exists(),
                    )
                )
                given_back = Claim(ticket_row=row.id, vendor=row.vendor, ticket=row.ticket,
                                   token=token, lease_until=now, events=(),
                                   last_note_key=row.last_note_key,
                                   last_occurred_at=row.last_occurred_at,
                                   attempts=row.attempts, known_at=row.known_at,
                                   dead_on_claim=tuple(poisoned))
            elif not found:
                # Nothing left (replayed elsewhere, or a stale flag): clear the flag and lease.
                conn.execute(
                    tickets.update()
                    .where(tickets.c.id == row.id, tickets.c.lease_token == token)
                    .values(pending=False, sla_due=False, lease_token=None, lease_until=None)
                )
        self._rearmed(rearm, on_rearm)
        if not found:
            return given_back if poisoned else None
        return Claim(
            ticket_row=row.id,
            vendor=row.vendor,
            ticket=row.ticket,
            token=token,
            lease_until=until,
            events=tuple(replace(stored_event(r), claims=r.claims + 1) for r in found),
            last_note_key=row.last_note_key,
            last_occurred_at=row.last_occurred_at,
            attempts=row.attempts,
            known_at=row.known_at,
            dead_on_claim=tuple(poisoned),
        )

    def complete(
        self,
        claim: Claim,
        *,
        record: DecisionRecord | None,
        note_key: str | None = None,
        known_at: int | None = None,
        sla: SlaWrite | None = None,
    ) -> bool:
        """Mark the claim's events done, remember the note posted, the newest event time and
        `known_at` (see tickets.known_at), record the decision and release the lease. False if
        the lease had been lost (the events are still marked done: their work was done).

        `sla` (issue 18) is written in the same transaction: history marks, the threshold keys
        the decision acted on, its notices and the ticket's next timer."""
        now = self.clock()
        ids = [e.id for e in claim.events]
        newest = max((e.occurred_at for e in claim.events if e.occurred_at is not None),
                     default=None)
        shape = {"note": note_key is not None, "known": known_at is not None,
                 "newest": newest is not None}
        params = {"p_row": claim.ticket_row, "p_token": claim.token, "p_vendor": claim.vendor,
                  "p_ticket": claim.ticket, "p_now": now, "p_next": now,
                  "p_note_key": note_key, "p_known": known_at, "p_newest": newest}
        with self._tx() as conn:
            conn.execute(st.EVENTS_DONE, {"p_ids": ids, "p_now": now})
            if record is not None:
                self._record(conn, record, now)
            if sla is not None:
                self._write_sla(conn, claim.vendor, claim.ticket, sla, now)
            # What the decision learnt and the lease's release: one UPDATE of the ticket.
            self._lock_ticket(conn, claim.ticket_row)
            kept = conn.execute(st.finish_ticket(
                done=True, due_claim=_holds_due(claim), **shape), params).rowcount == 1
            if not kept:
                # The lease expired and another worker holds the ticket now: record what this
                # decision learnt, leave the lease alone, keep the pending flag if events remain.
                conn.execute(st.record_ticket_only(**shape), params)
                conn.execute(st.KEEP_PENDING, params)
        self._notify_timer(sla)
        return kept

    def retry(
        self,
        claim: Claim,
        *,
        error: str,
        delay: float,
        max_attempts: int,
        record: DecisionRecord | None = None,
        on_rearm: RearmListener | None = None,
    ) -> list[int]:
        """Count a failed attempt on the claim's events and try again after `delay` seconds.
        Events that reach `max_attempts` become dead letters; their ids are returned. A dead
        SLA due event re-arms the ticket's timer in the same transaction (`_rearm_dead`;
        `on_rearm` is told after the commit)."""
        now = self.clock()
        ids = [e.id for e in claim.events]
        dead = [e.id for e in claim.events if e.attempts + 1 >= max_attempts]
        rearm: SlaRearm | None = None
        with self._tx() as conn:
            conn.execute(
                events.update()
                .where(events.c.id.in_(ids), events.c.status == PENDING)
                .values(attempts=events.c.attempts + 1, last_error=error)
            )
            if dead:
                conn.execute(
                    events.update()
                    .where(events.c.id.in_(dead), events.c.status == PENDING)
                    .values(status=DEAD, finished_at=now)
                )
            if record is not None:
                self._record(conn, record, now)
            conn.execute(
                tickets.update()
                .where(tickets.c.id == claim.ticket_row)
                .values(attempts=tickets.c.attempts + 1, last_error=error, updated_at=now)
            )
            if dead:
                rearm = self._rearm_dead(conn, claim.vendor, claim.ticket,
                                         [e for e in claim.events if e.id in dead], error, now)
            self._release(conn, claim, now, next_attempt_at=now + max(0.0, delay))
        self._rearmed(rearm, on_rearm)
        return dead

    def dead_letter(
        self, claim: Claim, *, error: str, record: DecisionRecord | None = None,
        on_rearm: RearmListener | None = None,
    ) -> SlaRearm | None:
        """Give up on the claim's events now (the vendor refused: retrying cannot help). A dead
        SLA due event re-arms the ticket's timer in the same transaction (returned)."""
        now = self.clock()
        ids = [e.id for e in claim.events]
        with self._tx() as conn:
            conn.execute(
                events.update()
                .where(events.c.id.in_(ids), events.c.status == PENDING)
                .values(status=DEAD, finished_at=now, last_error=error,
                        attempts=events.c.attempts + 1)
            )
            if record is not None:
                self._record(conn, record, now)
            conn.execute(
                tickets.update()
                .where(tickets.c.id == claim.ticket_row)
                .values(attempts=0, last_error=error, updated_at=now)
            )
            rearm = self._rearm_dead(conn, claim.vendor, claim.ticket, claim.events, error, now)
            self._release(conn, claim, now, next_attempt_at=now)
        self._rearmed(rearm, on_rearm)
        return rearm

    def dead_letter_events(
        self, claim: Claim, event_ids: Sequence[int], *, error: str,
        on_rearm: RearmListener | None = None,
    ) -> Claim:
        """Dead-letter some of the claim's events (malformed ones) and keep the lease on the
        rest; return the claim over the rest."""
        now = self.clock()
        ids = [e.id for e in claim.events if e.id in set(event_ids)]
        with self._tx() as conn:
            conn.execute(
                events.update()
                .where(events.c.id.in_(ids), events.c.status == PENDING)
                .values(status=DEAD, finished_at=now, last_error=error,
                        attempts=events.c.attempts + 1)
            )
            rearm = self._rearm_dead(conn, claim.vendor, claim.ticket,
                                     [e for e in claim.events if e.id in ids], error, now)
        self._rearmed(rearm, on_rearm)
        return replace(claim, events=tuple(e for e in claim.events if e.id not in ids))

    def _rearmed(self, rearm: SlaRearm | None, on_rearm: RearmListener | None) -> None:
        """After the commit: wake the timer loop, tell the caller (it logs and counts)."""
        if rearm is None:
            return
        self._notify_rearm(rearm)
        if on_rearm is not None:
            on_rearm(rearm)

    def extend(self, claim: Claim, *, lease_seconds: float) -> Claim | None:
        """Renew the claim's lease; None if it was lost (expired and taken over meanwhile)."""
        now = self.clock()
        until = now + lease_seconds
        with self._tx() as conn:
            result = conn.execute(
                tickets.update()
                .where(tickets.c.id == claim.ticket_row, tickets.c.lease_token == claim.token)
                .values(lease_until=until, updated_at=now)
            )
        return replace(claim, lease_until=until) if result.rowcount == 1 else None

    def release(self, claim: Claim) -> None:
        """Give the claim back untouched (graceful shutdown): no attempt is counted."""
        now = self.clock()
        with self._tx() as conn:
            # Handed back unattempted: this claim does not count as a possibly-landed write.
            conn.execute(
                events.update()
                .where(events.c.id.in_([e.id for e in claim.events]), events.c.claims > 0)
                .values(claims=events.c.claims - 1)
            )
            self._release(conn, claim, now, next_attempt_at=None)

    def _release(
        self, conn: Connection, claim: Claim, now: float, *, next_attempt_at: float | None
    ) -> bool:
        params = {"p_row": claim.ticket_row, "p_token": claim.token, "p_vendor": claim.vendor,
                  "p_ticket": claim.ticket, "p_next": next_attempt_at}
        stmt = st.finish_ticket(done=False, next_attempt=next_attempt_at is not None,
                                due_claim=_holds_due(claim))
        self._lock_ticket(conn, claim.ticket_row)
        if conn.execute(stmt, params).rowcount == 1:
            return True
        # The lease expired and another worker holds the ticket now: leave its lease alone but
        # keep the pending flag true if events remain (the holder recomputes it anyway).
        conn.execute(st.KEEP_PENDING, params)
        return False

    def _lock_ticket(self, conn: Connection, row: int) -> None:
        """On PostgreSQL, lock the ticket's row before recomputing its pending flag, so that the
        recomputing statement sees every event committed before it (st.LOCK_TICKET). SQLite
        runs one writer at a time: nothing to do."""
        if self.dialect == "postgresql":
            conn.execute(st.LOCK_TICKET, {"p_row": row})

    def pause_vendor(self, vendor: str, *, until: float, reason: str) -> None:
        """Claim no ticket of `vendor` before `until` (epoch seconds); a later pause wins."""
        with self._tx() as conn:
            stmt = self._insert(vendor_pauses).values(vendor=vendor, until=until, reason=reason)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["vendor"],
                    set_={
                        "until": sa.case(
                            (vendor_pauses.c.until < until, until), else_=vendor_pauses.c.until
                        ),
                        "reason": reason,
                    },
                )
            )

    def _record(self, conn: Connection, record: DecisionRecord, now: float) -> None:
        conn.execute(
            st.DECISION_INSERT, dict(
                vendor=record.vendor,
                ticket=record.ticket,
                created_at=now,
                policy_digest=record.policy_digest,
                tier_before=record.tier_before,
                tier_after=record.tier_after,
                outcome=record.outcome,
                reasons=json.dumps(list(record.reasons)),
                calls=json.dumps([dict(c) for c in record.calls]),
                decision=json.dumps(record.decision) if record.decision is not None else None,
                event_ids=json.dumps(list(record.event_ids)),
                error=record.error,
            )
        )


def _holds_due(claim: Claim) -> bool:
    """The claim covers an SLA due event (its release recomputes tickets.sla_due)."""
    return any(e.event_type == SLA_DUE_EVENT for e in claim.events)
