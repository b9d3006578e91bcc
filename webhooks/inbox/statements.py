"""The inbox's prebuilt statements of the per-ticket path (claim, complete, release, records).

Building a SQLAlchemy Core statement per call, and its cache key, cost more Python time than
running it (bench/sla.py's profile: about half of a worker's CPU per ticket). These are built
once, with bound parameters named `p_*` (column names are reserved for SET and VALUES), and
executed with a parameter dict; the few shapes that vary (a claim's vendors, which optional
columns a completion sets) are cached per shape. Everything here runs on SQLite and PostgreSQL
alike unless a function takes the dialect.
"""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

from webhooks.inbox.schema import (
    DONE,
    PENDING,
    SLA_DUE_EVENT,
    decisions,
    events,
    sla_marks,
    sla_timers,
    tickets,
    vendor_pauses,
)

_now = sa.bindparam("p_now", type_=sa.Float)


def _insert(dialect: str) -> Any:
    return pg_dialect.insert if dialect == "postgresql" else sqlite_dialect.insert


@functools.lru_cache(maxsize=32)
def claim_ticket(dialect: str, vendors: tuple[str, ...] | None) -> sa.Update:
    """Lease the next ready ticket (due first, see Inbox.claim): p_now, p_token, p_until."""
    free = sa.and_(
        tickets.c.pending.is_(True),
        sa.or_(tickets.c.lease_until.is_(None), tickets.c.lease_until < _now),
    )
    paused = sa.select(vendor_pauses.c.vendor).where(vendor_pauses.c.until > _now)
    ready = (
        sa.select(tickets.c.id)
        .where(free, tickets.c.next_attempt_at <= _now, tickets.c.vendor.not_in(paused))
        .order_by(tickets.c.next_attempt_at, tickets.c.id)
        .limit(1)
    )
    if vendors is not None:
        ready = ready.where(tickets.c.vendor.in_(list(vendors)))
    # Due first: the seek on ix_tierdesk_tickets_sla_due finds the few tickets holding a due
    # event; only when none is ready does the ordinary pick run (COALESCE evaluates its second
    # argument only when the first is NULL).
    due_first = ready.where(tickets.c.sla_due.is_(True))
    if dialect == "postgresql":
        ready = ready.with_for_update(skip_locked=True)
        due_first = due_first.with_for_update(skip_locked=True)
    pick = sa.func.coalesce(due_first.scalar_subquery(), ready.scalar_subquery())
    return (
        tickets.update()
        .where(tickets.c.id == pick, free)
        .values(lease_token=sa.bindparam("p_token"), lease_until=sa.bindparam("p_until"),
                updated_at=_now)
        .returning(
            tickets.c.id, tickets.c.vendor, tickets.c.ticket, tickets.c.last_note_key,
            tickets.c.last_occurred_at, tickets.c.attempts, tickets.c.known_at,
        )
    )


@functools.lru_cache(maxsize=8)
def pending_events(limit: int) -> sa.Select[Any]:
    """A ticket's pending events, oldest first: p_vendor, p_ticket."""
    return (
        sa.select(events)
        .where(events.c.vendor == sa.bindparam("p_vendor"),
               events.c.ticket == sa.bindparam("p_ticket"), events.c.status == PENDING)
        .order_by(events.c.id)
        .limit(limit)
    )


_ids: sa.BindParameter[Any] = sa.bindparam("p_ids", expanding=True)

#: Count a claim on events: p_ids.
COUNT_CLAIMS = events.update().where(events.c.id.in_(_ids)).values(claims=events.c.claims + 1)

#: Mark events done: p_ids, p_now.
EVENTS_DONE = (
    events.update()
    .where(events.c.id.in_(_ids), events.c.status == PENDING)
    .values(status=DONE, finished_at=_now, last_error=None)
)

#: One decision record (executed with its column values).
DECISION_INSERT = decisions.insert()


def _exists_pending(*, due_only: bool) -> sa.Exists:
    where = [events.c.vendor == sa.bindparam("p_vendor"),
             events.c.ticket == sa.bindparam("p_ticket"), events.c.status == PENDING]
    if due_only:
        where.append(events.c.event_type == SLA_DUE_EVENT)
    return sa.select(events.c.id).where(*where).exists()


def _latest(column: sa.ColumnElement[Any], param: str) -> sa.Case[Any]:
    value = sa.bindparam(param, type_=sa.BigInteger)
    return sa.case((column.is_(None), value), (column < value, value), else_=column)


@functools.lru_cache(maxsize=64)
def finish_ticket(
    *, done: bool, note: bool = False, known: bool = False, newest: bool = False,
    next_attempt: bool = True, due_claim: bool = False,
) -> sa.Update:
    """Release the ticket's lease (WHERE the claim's token still holds it), recomputing its
    pending and sla_due flags: p_row, p_token, p_vendor, p_ticket, p_now, p_next. With `done`
    (Inbox.complete) the same statement records what the decision learnt (attempts reset,
    p_note_key, p_known, p_newest), so a completion costs one UPDATE of the ticket."""
    values: dict[str, Any] = {
        "lease_token": None,
        "lease_until": None,
        "pending": _exists_pending(due_only=False),
        # Only a claim holding a due event can have changed whether one is pending.
        "sla_due": _exists_pending(due_only=True) if due_claim else tickets.c.sla_due,
    }
    if next_attempt:
        values["next_attempt_at"] = sa.bindparam("p_next", type_=sa.Float)
    if done:
        values.update(record_ticket(note=note, known=known, newest=newest))
    return (
        tickets.update()
        .where(tickets.c.id == sa.bindparam("p_row"),
               tickets.c.lease_token == sa.bindparam("p_token"))
        .values(values)
    )


def record_ticket(*, note: bool, known: bool, newest: bool) -> dict[str, Any]:
    """The SET clause of a completion's ticket update (see finish_ticket)."""
    values: dict[str, Any] = {"updated_at": _now, "attempts": 0, "last_error": None}
    if note:
        values["last_note_key"] = sa.bindparam("p_note_key")
    if known:
        values["known_at"] = _latest(tickets.c.known_at, "p_known")
    if newest:
        values["last_occurred_at"] = _latest(tickets.c.last_occurred_at, "p_newest")
    return values


@functools.lru_cache(maxsize=16)
def record_ticket_only(*, note: bool, known: bool, newest: bool) -> sa.Update:
    """A completion's ticket update when the lease was lost (no lease fields): p_row, ..."""
    return (
        tickets.update().where(tickets.c.id == sa.bindparam("p_row"))
        .values(record_ticket(note=note, known=known, newest=newest))
    )


#: The lease was lost: keep the pending flag true if events remain: p_row, p_vendor, p_ticket.
#: Lock the ticket's row before a statement that recomputes its pending flag (PostgreSQL):
#: p_row. Under READ COMMITTED each statement reads a snapshot taken when it starts, and an
#: UPDATE that waits on a row lock re-checks only its WHERE, not its SET subqueries
#: (PostgreSQL docs, "Transaction Isolation", 13.2.1 Read Committed Isolation Level). An
#: UPDATE whose snapshot predates a receiver's commit (a new event, the ticket's pending flag
#: set) would compute `pending` without that event and clear the flag over it: the event is
#: then never claimed (tests/replicas caught it). Taking the lock first, in its own statement,
#: makes the recomputing statement start after any such commit.
LOCK_TICKET = (
    sa.select(tickets.c.id).where(tickets.c.id == sa.bindparam("p_row")).with_for_update()
)

KEEP_PENDING = (
    tickets.update()
    .where(tickets.c.id == sa.bindparam("p_row"), _exists_pending(due_only=False))
    .values(pending=True)
)

# ----------------------------------------------------------------------------- SLA records

_mark = sa.and_(sla_marks.c.vendor == sa.bindparam("p_vendor"),
                sla_marks.c.ticket == sa.bindparam("p_ticket"),
                sla_marks.c.kind == sa.bindparam("p_kind"))

#: The value of the mark of a kind in force at p_at (the latest at or before it).
MARK_BEFORE = (
    sa.select(sla_marks.c.value)
    .where(_mark, sla_marks.c.at <= sa.bindparam("p_at", type_=sa.Float))
    .order_by(sla_marks.c.at.desc(), sla_marks.c.id.desc())
    .limit(1)
)
#: The earliest mark of a kind (created, reply).
MARK_EARLIEST = sa.select(sa.func.min(sla_marks.c.at)).where(_mark)
#: Every mark of a kind (replaced by an earlier creation or reply).
MARK_DELETE = sla_marks.delete().where(_mark)

_TIMER_COLUMNS = ("due_at", "clock", "fraction", "breach_at", "policy_digest", "plan", "tier",
                  "priority", "clocks", "open_clocks", "updated_at", "lease_token",
                  "lease_until", "rearms", "rearm_error")


@functools.lru_cache(maxsize=2)
def mark_insert(dialect: str) -> Any:
    """Record one mark (a repeat of a recorded one is skipped by the unique key)."""
    return (
        _insert(dialect)(sla_marks)
        .values(vendor=sa.bindparam("p_vendor"), ticket=sa.bindparam("p_ticket"),
                kind=sa.bindparam("p_kind"), value=sa.bindparam("p_value"),
                at=sa.bindparam("p_at", type_=sa.Float), recorded_at=_now)
        .on_conflict_do_nothing(index_elements=["vendor", "ticket", "kind", "at", "value"])
    )


@functools.lru_cache(maxsize=2)
def timer_upsert(dialect: str) -> Any:
    """Insert or replace a ticket's timer: p_vendor, p_ticket and p_<column> for each of
    _TIMER_COLUMNS."""
    types = {c: sla_timers.c[c].type for c in _TIMER_COLUMNS}
    stmt = _insert(dialect)(sla_timers).values(
        vendor=sa.bindparam("p_vendor"), ticket=sa.bindparam("p_ticket"),
        **{c: sa.bindparam(f"p_{c}", type_=types[c]) for c in _TIMER_COLUMNS},
    )
    return stmt.on_conflict_do_update(
        index_elements=["vendor", "ticket"],
        set_={c: stmt.excluded[c] for c in _TIMER_COLUMNS},
    )
