"""The inbox's SLA side (issue 18): recorded ticket history, per-ticket timers, fired thresholds,
the notice outbox, and the synthetic due events that serialise a firing with the ticket's work.

    record_sla(vendor, ticket, SlaWrite)      marks / fired keys / notices / timer, one transaction
    sla_history(vendor, ticket)               -> tiering.sla.TicketHistory | None
    sla_fired_keys(vendor, ticket)            the threshold keys already acted on
    set_timer / clear_timer                   a ticket's next due instant
    claim_due_timers(lease_seconds=...)       due timers, leased like events
    enqueue_due_timers(claimed)               one tierdesk:sla-due event per timer, once
    sla_timers(vendor=...)                    open timers, soonest breach first (sla list)

`Inbox.complete(..., sla=SlaWrite(...))` writes the same things in the decision's transaction, so
a threshold is recorded as fired exactly when the decision that acted on it is.

A due timer becomes an ordinary event of its ticket: `enqueue_due_timers` inserts it with the
delivery id `sla-due:<ticket>:<due ms>`, so the events table's unique (vendor, delivery_id) makes
the enqueue exactly-once even when two loops (two replicas, or a loop restarted after SIGKILL with
its lease expired) enqueue the same due instant, and clears the timer in the same transaction.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tiering.sla import TicketHistory, TierEntry
from tiering.sla_models import STATUSES
from webhooks.inbox import statements as st
from webhooks.inbox.records import (
    CLEAR_TIMER,
    Notice,
    OutgoingNotice,
    SlaMark,
    SlaRearm,
    SlaTimer,
    SlaWrite,
)
from webhooks.inbox.schema import (
    MARK_CREATED,
    MARK_REPLY,
    MARK_STATUS,
    MARK_TIER,
    PENDING,
    SLA_DUE_EVENT,
    events,
    sla_fired,
    sla_marks,
    sla_notices,
    sla_timers,
    tickets,
)

MARK_KINDS = (MARK_CREATED, MARK_STATUS, MARK_TIER, MARK_REPLY)

#: Timers per statement when due timers are enqueued (bounded bind parameters: 14 a row).
ENQUEUE_CHUNK = 200

#: A timer re-armed after its due event became a dead letter is due again after
#: REARM_INITIAL * 2**(re-arms before) seconds, at most REARM_MAX: a ticket whose writes the
#: vendor keeps refusing is retried hourly, not in a hot loop (`SlaStore._rearm_dead`).
REARM_INITIAL = 60.0
REARM_MAX = 3600.0


def rearm_delay(rearms: int) -> float:
    """Seconds until a timer re-armed for the (`rearms` + 1)-th time in a row falls due."""
    return min(REARM_MAX, REARM_INITIAL * 2.0 ** min(rearms, 32))


def due_delivery_id(ticket: str, due_at: float) -> str:
    """The delivery id of the synthetic event for `ticket`'s timer due at `due_at`: the same
    for every loop that enqueues that instant (the events table's unique key dedupes it)."""
    ms = round(due_at * 1000)
    name = ticket if len(ticket) <= 200 else hashlib.sha256(ticket.encode()).hexdigest()[:32]
    return f"sla-due:{name}:{ms}"


def check_mark(mark: SlaMark) -> None:
    """Raise ValueError naming what is wrong with a mark (unknown kind or status)."""
    if mark.kind not in MARK_KINDS:
        raise ValueError(f"unknown SLA mark kind {mark.kind!r}: one of {', '.join(MARK_KINDS)}")
    if mark.kind == MARK_STATUS and mark.value not in STATUSES:
        raise ValueError(
            f"unknown status {mark.value!r} in an SLA mark: a neutral status, one of"
            f" {', '.join(STATUSES)} (the connector maps the vendor's status)"
        )
    if mark.kind == MARK_TIER and not mark.value:
        raise ValueError("a tier mark needs the tier's name as its value")
    if mark.at != mark.at or mark.at in (float("inf"), float("-inf")):
        raise ValueError(f"an SLA mark's instant must be a finite epoch time, not {mark.at}")


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def history_from_marks(marks: Iterable[SlaMark]) -> TicketHistory | None:
    """The ticket history the marks describe, or None when its creation is not known.

    The earliest `created` mark is the creation; status marks are transitions (in any order);
    tier marks in time order, repeats of the tier before dropped; the earliest reply mark (not
    before creation) is the first public agent reply."""
    marks = list(marks)
    created = [m.at for m in marks if m.kind == MARK_CREATED]
    if not created:
        return None
    start = min(created)
    tiers: list[TierEntry] = []
    for m in sorted((m for m in marks if m.kind == MARK_TIER), key=lambda m: m.at):
        if not tiers or tiers[-1].tier != m.value:
            tiers.append(TierEntry(m.value, _dt(max(m.at, start))))
    replies = [m.at for m in marks if m.kind == MARK_REPLY]
    return TicketHistory.from_transitions(
        _dt(start),
        [(_dt(m.at), m.value) for m in marks if m.kind == MARK_STATUS],
        tiers=tiers,
        first_reply_at=_dt(max(start, min(replies))) if replies else None,
    )


# Prebuilt statements of the per-ticket path (building a Core statement per call, and its
# cache key, cost more Python time than running it): parameters are bound at execution.
_MARKS_OF = (
    sa.select(sla_marks.c.kind, sla_marks.c.at, sla_marks.c.value)
    .where(sla_marks.c.vendor == sa.bindparam("vendor"),
           sla_marks.c.ticket == sa.bindparam("ticket"))
    .order_by(sla_marks.c.at, sla_marks.c.id)
)
_FIRED_OF = sa.select(sla_fired.c.threshold_key).where(
    sla_fired.c.vendor == sa.bindparam("vendor"), sla_fired.c.ticket == sa.bindparam("ticket"))


def _timer_of(row: Any) -> SlaTimer:
    return SlaTimer(
        vendor=row.vendor, ticket=row.ticket, due_at=row.due_at, clock=row.clock,
        fraction=row.fraction, breach_at=row.breach_at, policy_digest=row.policy_digest,
        plan=row.plan, tier=row.tier, priority=row.priority,
        clocks=tuple(json.loads(row.clocks or "[]")), open_clocks=int(row.open_clocks or 0),
        updated_at=row.updated_at, lease_token=row.lease_token, lease_until=row.lease_until,
        rearms=int(row.rearms or 0), rearm_error=row.rearm_error,
    )


class SlaStore:
    """The SLA methods of `Inbox` (a mixin: `Inbox` supplies the transactions and the clock)."""

    clock: Callable[[], float]
    dialect: str
    _insert: Any

    if TYPE_CHECKING:
        def _tx(self) -> AbstractContextManager[Connection]: ...

        def _read(self) -> AbstractContextManager[Connection]: ...

    # ------------------------------------------------------------------ timer wake-ups

    def add_timer_listener(self, listener: Callable[[float], None]) -> None:
        """Call `listener(due_at)` after a transaction of this process set a timer (the timer
        loop wakes early for a nearer one)."""
        self._timer_listeners().append(listener)

    def _timer_listeners(self) -> list[Callable[[float], None]]:
        found: list[Callable[[float], None]] | None = self.__dict__.get("_sla_listeners")
        if found is None:
            found = []
            self.__dict__["_sla_listeners"] = found
        return found

    def _notify_timer(self, write: SlaWrite | None) -> None:
        if write is None or not isinstance(write.timer, SlaTimer) or write.timer.due_at is None:
            return
        for listener in list(self._timer_listeners()):
            listener(write.timer.due_at)

    # ------------------------------------------------------------------ writing

    def record_sla(self, vendor: str, ticket: str, write: SlaWrite) -> None:
        """Record `write` (marks, fired keys, notices, timer) in one transaction."""
        with self._tx() as conn:
            self._write_sla(conn, vendor, ticket, write, self.clock())
        self._notify_timer(write)

    def record_marks(self, vendor: str, ticket: str, marks: Sequence[SlaMark]) -> None:
        """Record observed history marks of one ticket (see `SlaWrite.marks`)."""
        self.record_sla(vendor, ticket, SlaWrite(marks=tuple(marks)))

    def set_timer(self, timer: SlaTimer) -> None:
        """Set (insert or replace) the ticket's timer; a lease on the old one is dropped."""
        self.record_sla(timer.vendor, timer.ticket, SlaWrite(timer=timer))

    def clear_timer(self, vendor: str, ticket: str) -> None:
        """Delete the ticket's timer (no clock of it is open any more)."""
        self.record_sla(vendor, ticket, SlaWrite(timer=CLEAR_TIMER))

    def _write_sla(
        self, conn: Connection, vendor: str, ticket: str, write: SlaWrite, now: float
    ) -> None:
        for mark in write.marks:
            check_mark(mark)
        for mark in write.marks:
            self._write_mark(conn, vendor, ticket, mark, now)
        for key in dict.fromkeys(write.fired):
            conn.execute(
                self._insert(sla_fired)
                .values(vendor=vendor, ticket=ticket, threshold_key=key[:255], fired_at=now)
                .on_conflict_do_nothing(index_elements=["vendor", "ticket", "threshold_key"])
            )
        for notice in write.notices:
            self._write_notice(conn, vendor, ticket, notice, now)
        if write.timer == CLEAR_TIMER:
            conn.execute(sla_timers.delete().where(
                sla_timers.c.vendor == vendor, sla_timers.c.ticket == ticket))
        elif isinstance(write.timer, SlaTimer):
            self._write_timer(conn, vendor, ticket, write.timer, now)
        elif write.timer is not None:
            raise ValueError(f"SlaWrite.timer must be an SlaTimer, CLEAR_TIMER or None,"
                             f" not {write.timer!r}")

    def _write_mark(
        self, conn: Connection, vendor: str, ticket: str, mark: SlaMark, now: float
    ) -> None:
        params = {"p_vendor": vendor, "p_ticket": ticket, "p_kind": mark.kind, "p_at": mark.at,
                  "p_value": mark.value[:64], "p_now": now}
        if mark.kind in (MARK_STATUS, MARK_TIER):
            # A repeat of the state already in force at that instant adds nothing.
            before = conn.execute(st.MARK_BEFORE, params).scalar()
            if before == mark.value:
                return
        else:
            # Only the earliest creation / reply counts: one row, replaced by an earlier one.
            earliest = conn.execute(st.MARK_EARLIEST, params).scalar()
            if earliest is not None and float(earliest) <= mark.at:
                return
            conn.execute(st.MARK_DELETE, params)
        conn.execute(st.mark_insert(self.dialect), params)

    def _write_notice(
        self, conn: Connection, vendor: str, ticket: str, notice: Notice, now: float
    ) -> None:
        conn.execute(
            self._insert(sla_notices)
            .values(vendor=vendor, ticket=ticket, notice_key=notice.notice_key[:255],
                    url=notice.url, body=json.dumps(dict(notice.body), ensure_ascii=False),
                    created_at=now, attempts=0, next_attempt_at=now, sent_at=None,
                    last_error=None)
            .on_conflict_do_nothing(index_elements=["notice_key"])
        )

    def _write_timer(
        self, conn: Connection, vendor: str, ticket: str, timer: SlaTimer, now: float
    ) -> None:
        conn.execute(st.timer_upsert(self.dialect), {
            "p_vendor": vendor, "p_ticket": ticket,
            "p_due_at": timer.due_at, "p_clock": timer.clock, "p_fraction": timer.fraction,
            "p_breach_at": timer.breach_at, "p_policy_digest": timer.policy_digest,
            "p_plan": timer.plan, "p_tier": timer.tier, "p_priority": timer.priority,
            "p_clocks": json.dumps([dict(c) for c in timer.clocks]),
            "p_open_clocks": timer.open_clocks, "p_updated_at": now,
            "p_lease_token": None, "p_lease_until": None,
            # A decision recorded the timer: it is no longer a re-arm after a dead letter.
            "p_rearms": 0, "p_rearm_error": None,
        })

    def _rearm_dead(
        self, conn: Connection, vendor: str, ticket: str, dead: Iterable[Any], error: str,
        now: float,
    ) -> SlaRearm | None:
        """In the transaction that dead-letters `dead` (events, or rows with `event_type`):
        when one of them is the ticket's SLA due event, re-arm the ticket's timer so that
        nothing is lost (nothing else would fire it before the ticket's next event).

        Only a timer still open and waiting (clocks open, no due instant: the due event's
        enqueue cleared it and no decision has set it since) is re-armed, due after
        `rearm_delay(rearms)` with rearms counted up. The synthetic event it then enqueues has
        a new delivery id (its due instant) and the worker decides on the ticket afresh from
        the recorded history, the policy in force and the fired keys, so a threshold already
        acted on (a replayed dead letter, say) is never acted on again."""
        if not any(e.event_type == SLA_DUE_EVENT for e in dead):
            return None
        t = sla_timers.c
        row = conn.execute(
            sa.select(t.id, t.rearms).where(
                t.vendor == vendor, t.ticket == ticket, t.due_at.is_(None), t.open_clocks > 0)
        ).first()
        if row is None:
            return None
        rearms = int(row.rearms or 0)
        due = now + rearm_delay(rearms)
        done = conn.execute(
            sla_timers.update()
            .where(t.id == row.id, t.due_at.is_(None), t.rearms == rearms)
            .values(due_at=due, rearms=rearms + 1, rearm_error=error[:2000],
                    lease_token=None, lease_until=None, updated_at=now)
        )
        if done.rowcount != 1:
            return None  # a decision set the timer meanwhile: its due instant stands
        return SlaRearm(vendor=vendor, ticket=ticket, due_at=due, rearms=rearms + 1,
                        error=error)

    def _notify_rearm(self, rearm: SlaRearm | None) -> None:
        if rearm is None:
            return
        for listener in list(self._timer_listeners()):
            listener(rearm.due_at)

    # ------------------------------------------------------------------ reading

    def sla_marks(self, vendor: str, ticket: str) -> list[SlaMark]:
        """Every recorded mark of one ticket, by instant."""
        with self._read() as conn:
            rows = conn.execute(_MARKS_OF, {"vendor": vendor, "ticket": ticket}).all()
        return [SlaMark(kind=r.kind, at=float(r.at), value=r.value) for r in rows]

    def sla_state(self, vendor: str, ticket: str) -> tuple[list[SlaMark], frozenset[str]]:
        """The ticket's recorded marks (by instant) and fired threshold keys, in one read (the
        worker's SLA step; two prebuilt statements)."""
        with self._read() as conn:
            rows = conn.execute(_MARKS_OF, {"vendor": vendor, "ticket": ticket}).all()
            keys = conn.execute(_FIRED_OF, {"vendor": vendor, "ticket": ticket}).scalars().all()
        return ([SlaMark(kind=r.kind, at=float(r.at), value=r.value) for r in rows],
                frozenset(str(k) for k in keys))

    def sla_history(
        self, vendor: str, ticket: str, *, extra: Sequence[SlaMark] = ()
    ) -> TicketHistory | None:
        """The ticket's recorded history (with `extra` marks not yet recorded, e.g. what the
        event in hand shows) as a TicketHistory; None when its creation is not known."""
        for mark in extra:
            check_mark(mark)
        return history_from_marks([*self.sla_marks(vendor, ticket), *extra])

    def sla_fired_keys(self, vendor: str, ticket: str) -> frozenset[str]:
        """The threshold keys already acted on for one ticket."""
        with self._read() as conn:
            rows = conn.execute(_FIRED_OF, {"vendor": vendor, "ticket": ticket}).scalars().all()
        return frozenset(str(r) for r in rows)

    def sla_timer(self, vendor: str, ticket: str) -> SlaTimer | None:
        with self._read() as conn:
            row = conn.execute(sa.select(sla_timers).where(
                sla_timers.c.vendor == vendor, sla_timers.c.ticket == ticket)).first()
        return _timer_of(row) if row is not None else None

    def sla_timers(
        self, *, vendor: str | None = None, limit: int = 1000, at_risk_before: float | None = None
    ) -> list[SlaTimer]:
        """Tickets with open clocks, soonest breach first (then soonest due; breached or
        paused ones without a breach instant last). `at_risk_before`: only those whose breach
        instant is before it, or that are breached already (no breach ahead, a clock open)."""
        query = sa.select(sla_timers)
        if vendor is not None:
            query = query.where(sla_timers.c.vendor == vendor)
        if at_risk_before is not None:
            query = query.where(sla_timers.c.breach_at < at_risk_before)
        query = query.order_by(
            sa.case((sla_timers.c.breach_at.is_(None), 1), else_=0), sla_timers.c.breach_at,
            sa.case((sla_timers.c.due_at.is_(None), 1), else_=0), sla_timers.c.due_at,
            sla_timers.c.id,
        ).limit(limit)
        with self._read() as conn:
            return [_timer_of(r) for r in conn.execute(query).all()]

    def iter_timers(self, *, batch: int = 1000) -> Iterator[SlaTimer]:
        """Every timer, in pages of `batch` (one short read each): for recomputing them all."""
        after = 0
        while True:
            with self._read() as conn:
                rows = conn.execute(
                    sa.select(sla_timers).where(sla_timers.c.id > after)
                    .order_by(sla_timers.c.id).limit(batch)
                ).all()
            for row in rows:
                yield _timer_of(row)
            if len(rows) < batch:
                return
            after = rows[-1].id

    def open_clock_count(self) -> dict[str, int]:
        """Open (not stopped) clocks per vendor, for the /metrics gauge."""
        with self._read() as conn:
            rows = conn.execute(
                sa.select(sla_timers.c.vendor, sa.func.sum(sla_timers.c.open_clocks))
                .group_by(sla_timers.c.vendor)
            ).all()
        return {str(v): int(n or 0) for v, n in rows}

    def next_timer_queries(self) -> tuple[sa.Select[Any], sa.Select[Any]]:
        """The two index seeks `next_timer_in` runs (ix_tierdesk_sla_timers_lease_due): the
        soonest due instant among unleased timers, and among leased ones (few: the timers in
        flight) the soonest of max(lease end, due instant)."""
        t = sla_timers.c
        unleased = (
            sa.select(t.due_at)
            .where(t.lease_until.is_(None), t.due_at.is_not(None))
            .order_by(t.due_at).limit(1)
        )
        leased = (
            sa.select(sa.func.min(sa.case((t.lease_until > t.due_at, t.lease_until),
                                          else_=t.due_at)))
            .where(t.lease_until.is_not(None), t.due_at.is_not(None))
        )
        return unleased, leased

    def next_timer_in(self) -> float | None:
        """Seconds until the soonest unleased (or lease-expired) timer falls due; None: none.
        Two index seeks, not a scan of every timer: the timer loop asks this every poll."""
        now = self.clock()
        unleased, leased = self.next_timer_queries()
        with self._read() as conn:
            found = [conn.execute(unleased).scalar(), conn.execute(leased).scalar()]
        soonest = min((float(v) for v in found if v is not None), default=None)
        return None if soonest is None else max(0.0, soonest - now)

    # ------------------------------------------------------------------ firing

    def claim_due_timers(self, *, lease_seconds: float, limit: int = 500) -> list[SlaTimer]:
        """Lease up to `limit` timers due now (soonest first) that no live lease holds."""
        now = self.clock()
        token = secrets.token_hex(16)
        free = sa.or_(sla_timers.c.lease_until.is_(None), sla_timers.c.lease_until < now)
        pick = (
            sa.select(sla_timers.c.id)
            .where(sla_timers.c.due_at.is_not(None), sla_timers.c.due_at <= now, free)
            .order_by(sla_timers.c.due_at, sla_timers.c.id)
            .limit(limit)
        )
        if self.dialect == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        with self._tx() as conn:
            ids = conn.execute(pick).scalars().all()
            if not ids:
                return []
            conn.execute(
                sla_timers.update().where(sla_timers.c.id.in_(ids), free)
                .values(lease_token=token, lease_until=now + lease_seconds)
            )
            rows = conn.execute(
                sa.select(sla_timers).where(sla_timers.c.lease_token == token)
                .order_by(sla_timers.c.due_at, sla_timers.c.id)
            ).all()
        return [_timer_of(r) for r in rows]

    def enqueue_due_timers(self, claimed: Sequence[SlaTimer]) -> list[SlaTimer]:
        """For each claimed timer still as claimed (same lease, same due instant), store one
        `tierdesk:sla-due` event for its ticket and clear the timer's due instant, in one
        transaction; return the timers enqueued, in claimed order. A timer re-set meanwhile
        (the ticket's work computed a new one) is skipped: its new due instant stands.

        Set-based, per `ENQUEUE_CHUNK` timers: one UPDATE ... RETURNING releases the timers
        still holding their lease and due instant, one multi-row INSERT ... ON CONFLICT DO
        NOTHING RETURNING stores the events (the unique (vendor, delivery_id) makes it
        exactly-once across loops), one multi-row upsert marks their tickets pending."""
        now = self.clock()
        wanted = {(t.vendor, t.ticket): t for t in claimed
                  if t.due_at is not None and t.lease_token is not None}
        done: set[tuple[str, str]] = set()
        if not wanted:
            return []
        keys = list(wanted)
        with self._tx() as conn:
            for start in range(0, len(keys), ENQUEUE_CHUNK):
                part = [wanted[k] for k in keys[start:start + ENQUEUE_CHUNK]]
                done |= self._enqueue_chunk(conn, part, now)
        return [t for k, t in wanted.items() if k in done]

    def _enqueue_chunk(
        self, conn: Connection, part: Sequence[SlaTimer], now: float
    ) -> set[tuple[str, str]]:
        t = sla_timers.c
        released = conn.execute(
            sla_timers.update()
            .where(sa.tuple_(t.vendor, t.ticket, t.lease_token, t.due_at).in_(
                [(x.vendor, x.ticket, x.lease_token, x.due_at) for x in part]))
            .values(due_at=None, lease_token=None, lease_until=None, updated_at=now)
            .returning(t.vendor, t.ticket)
        ).all()
        ours = {(r.vendor, r.ticket) for r in released}
        timers = [x for x in part if (x.vendor, x.ticket) in ours]
        if not timers:
            return set()
        rows = [{
            "vendor": x.vendor, "delivery_id": due_delivery_id(x.ticket, float(x.due_at or 0)),
            "event_type": SLA_DUE_EVENT, "ticket": x.ticket, "status": PENDING, "actor": None,
            "occurred_at": None, "received_at": now,
            "payload": json.dumps({
                "tierdesk": SLA_DUE_EVENT, "ticket": x.ticket, "due_at": x.due_at,
                "clock": x.clock, "fraction": x.fraction,
            }, separators=(",", ":")),
            "attempts": 0, "claims": 0, "finished_at": None, "last_error": None,
        } for x in timers]
        stored = conn.execute(
            self._insert(events).values(rows)
            .on_conflict_do_nothing(index_elements=["vendor", "delivery_id"])
            .returning(events.c.vendor, events.c.ticket)
        ).all()
        new = {(r.vendor, r.ticket) for r in stored}  # the rest: another loop enqueued them
        if new:
            upsert = self._insert(tickets).values([
                {"vendor": v, "ticket": k, "pending": True, "next_attempt_at": now,
                 "attempts": 0, "updated_at": now, "sla_due": True}
                for v, k in sorted(new)  # one order for every loop: no deadlock on PostgreSQL
            ])
            # A ticket waiting out a backoff keeps its next_attempt_at (as enqueue_many does);
            # sla_due puts it before the ordinary backlog (Inbox.claim).
            conn.execute(upsert.on_conflict_do_update(
                index_elements=["vendor", "ticket"],
                set_={"pending": True, "sla_due": True,
                      "updated_at": upsert.excluded.updated_at},
            ))
        return new

    # ------------------------------------------------------------------ notices outbox

    def due_notices(self, *, limit: int = 100) -> list[OutgoingNotice]:
        """Unsent notices whose next attempt is due, oldest first."""
        now = self.clock()
        with self._read() as conn:
            rows = conn.execute(
                sa.select(sla_notices)
                .where(sla_notices.c.sent_at.is_(None), sla_notices.c.next_attempt_at <= now)
                .order_by(sla_notices.c.next_attempt_at, sla_notices.c.id).limit(limit)
            ).all()
        return [OutgoingNotice(
            id=r.id, vendor=r.vendor, ticket=r.ticket, notice_key=r.notice_key, url=r.url,
            body=r.body, created_at=r.created_at, attempts=r.attempts,
            next_attempt_at=r.next_attempt_at, sent_at=r.sent_at, last_error=r.last_error,
        ) for r in rows]

    def notices_of(self, vendor: str, ticket: str) -> list[OutgoingNotice]:
        """Every notice of one ticket, oldest first (sent or not)."""
        with self._read() as conn:
            rows = conn.execute(
                sa.select(sla_notices)
                .where(sla_notices.c.vendor == vendor, sla_notices.c.ticket == ticket)
                .order_by(sla_notices.c.id)
            ).all()
        return [OutgoingNotice(
            id=r.id, vendor=r.vendor, ticket=r.ticket, notice_key=r.notice_key, url=r.url,
            body=r.body, created_at=r.created_at, attempts=r.attempts,
            next_attempt_at=r.next_attempt_at, sent_at=r.sent_at, last_error=r.last_error,
        ) for r in rows]

