"""The inbox's read-only queries: stored events, dead letters, decision history, depth, pauses,
and each ticket's newest stored payloads (`tierdesk plan`)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from webhooks.inbox.records import DecisionRecord, Depth, StoredEvent, stored_event
from webhooks.inbox.schema import (
    DEAD,
    IGNORED,
    PENDING,
    decisions,
    events,
    tickets,
    vendor_pauses,
)

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class TicketPayloads:
    """One ticket's stored payloads, newest first, and the note tierdesk last posted on it."""

    vendor: str
    ticket: str
    last_note_key: str | None
    payloads: tuple[Mapping[str, Any], ...]


class InboxReads:
    """Queries on one inbox database that write nothing (the base of `Inbox`): each runs in its
    own read transaction, which on SQLite takes no write lock."""

    def __init__(self, engine: Engine, *, clock: Clock = time.time) -> None:
        self.engine = engine
        self.clock = clock
        self.dialect = engine.dialect.name

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            conn.execution_options(tierdesk_read=True)
            yield conn
            conn.rollback()

    def ping(self) -> None:
        """Raise if the database cannot be reached (for /readyz)."""
        with self._read() as conn:
            conn.execute(sa.select(sa.literal(1)))

    def pauses(self) -> dict[str, tuple[float, str]]:
        """Every vendor paused now: vendor -> (until, reason)."""
        with self._read() as conn:
            rows = conn.execute(
                sa.select(vendor_pauses.c.vendor, vendor_pauses.c.until, vendor_pauses.c.reason)
                .where(vendor_pauses.c.until > self.clock())
            ).all()
        return {str(r[0]): (float(r[1]), str(r[2] or "")) for r in rows}

    def paused_until(self, vendor: str) -> float | None:
        """When `vendor`'s pause ends, if it is paused now."""
        with self._read() as conn:
            until = conn.execute(
                sa.select(vendor_pauses.c.until).where(vendor_pauses.c.vendor == vendor)
            ).scalar()
        return float(until) if until is not None and until > self.clock() else None

    def next_ready_in(self, vendors: Sequence[str] | None = None) -> float | None:
        """Seconds until the earliest waiting ticket (of `vendors`) becomes claimable (None:
        nothing waits)."""
        # A leased ticket becomes claimable when its lease expires, not at its next_attempt_at.
        ready_at = sa.case(
            (tickets.c.lease_until.is_(None), tickets.c.next_attempt_at),
            (tickets.c.lease_until > tickets.c.next_attempt_at, tickets.c.lease_until),
            else_=tickets.c.next_attempt_at,
        )
        query = sa.select(sa.func.min(ready_at)).where(tickets.c.pending.is_(True))
        if vendors is not None:
            query = query.where(tickets.c.vendor.in_(list(vendors)))
        with self._read() as conn:
            soonest = conn.execute(query).scalar()
        if soonest is None:
            return None
        return max(0.0, float(soonest) - self.clock())

    def event(self, event_id: int) -> StoredEvent | None:
        with self._read() as conn:
            row = conn.execute(sa.select(events).where(events.c.id == event_id)).first()
        return stored_event(row) if row is not None else None

    def events_of(self, vendor: str, ticket: str) -> list[StoredEvent]:
        """Every stored event of one ticket, oldest first."""
        with self._read() as conn:
            rows = conn.execute(
                sa.select(events)
                .where(events.c.vendor == vendor, events.c.ticket == ticket)
                .order_by(events.c.id)
            ).all()
        return [stored_event(r) for r in rows]

    def dead_letters(self, *, limit: int = 100) -> list[StoredEvent]:
        """Dead letters, newest first."""
        with self._read() as conn:
            rows = conn.execute(
                sa.select(events).where(events.c.status == DEAD).order_by(events.c.id.desc())
                .limit(limit)
            ).all()
        return [stored_event(r) for r in rows]

    def history(self, vendor: str, ticket: str, *, limit: int = 50) -> list[DecisionRecord]:
        """The decision records of one ticket, newest first."""
        with self._read() as conn:
            rows = conn.execute(
                sa.select(decisions)
                .where(decisions.c.vendor == vendor, decisions.c.ticket == ticket)
                .order_by(decisions.c.id.desc())
                .limit(limit)
            ).all()
        return [
            DecisionRecord(
                id=r.id,
                vendor=r.vendor,
                ticket=r.ticket,
                outcome=r.outcome,
                event_ids=tuple(json.loads(r.event_ids)),
                policy_digest=r.policy_digest,
                tier_before=r.tier_before,
                tier_after=r.tier_after,
                reasons=tuple(json.loads(r.reasons)),
                calls=tuple(json.loads(r.calls)),
                decision=json.loads(r.decision) if r.decision else None,
                error=r.error,
                created_at=r.created_at,
            )
            for r in rows
        ]

    def ticket_keys(
        self, vendor: str, *, casefold: str | None = None, limit: int = 10_000
    ) -> list[str]:
        """Ticket keys the inbox knows for `vendor` (newest first): with `casefold`, only
        those equal to it ignoring case (`tierdesk explain jira sup-1` finds SUP-1)."""
        query = sa.select(tickets.c.ticket).where(tickets.c.vendor == vendor)
        if casefold is not None:
            query = query.where(sa.func.lower(tickets.c.ticket) == casefold.lower())
        with self._read() as conn:
            rows = conn.execute(query.order_by(tickets.c.updated_at.desc()).limit(limit)).all()
        return [str(r.ticket) for r in rows]

    def ticket_state(self, vendor: str, ticket: str) -> Mapping[str, Any] | None:
        """The per-ticket row (lease, backoff, last note key), for operators and tests."""
        with self._read() as conn:
            row = conn.execute(
                sa.select(tickets).where(tickets.c.vendor == vendor, tickets.c.ticket == ticket)
            ).first()
        return dict(row._mapping) if row is not None else None

    def depth(self) -> Depth:
        """Counts for /metrics and the CLI."""
        now = self.clock()
        with self._read() as conn:
            pending_rows = conn.execute(
                sa.select(events.c.vendor, sa.func.count(), sa.func.min(events.c.received_at))
                .where(events.c.status == PENDING)
                .group_by(events.c.vendor)
            ).all()
            by_vendor = {str(v): int(n) for v, n, _ in pending_rows}
            oldest = {str(v): max(0.0, now - float(t)) for v, _, t in pending_rows
                      if t is not None}
            paused = {
                str(v): float(until) - now
                for v, until in conn.execute(
                    sa.select(vendor_pauses.c.vendor, vendor_pauses.c.until)
                    .where(vendor_pauses.c.until > now)
                ).all()
            }
            ready = conn.execute(
                sa.select(sa.func.count()).select_from(tickets).where(
                    tickets.c.pending.is_(True), tickets.c.next_attempt_at <= now
                )
            ).scalar()
            dead = conn.execute(
                sa.select(sa.func.count()).select_from(events).where(events.c.status == DEAD)
            ).scalar()
        return Depth(
            pending_events=sum(by_vendor.values()),
            ready_tickets=int(ready or 0),
            dead_letters=int(dead or 0),
            by_vendor=by_vendor,
            oldest_pending_age=oldest,
            paused_for=paused,
        )

    def counts(self) -> dict[str, int]:
        """Number of events per status."""
        with self._read() as conn:
            return {
                str(s): int(n)
                for s, n in conn.execute(
                    sa.select(events.c.status, sa.func.count()).group_by(events.c.status)
                ).all()
            }

    def newest_payloads(
        self, *, since: float, per_ticket: int = 20, batch: int = 1000
    ) -> Iterator[TicketPayloads]:
        """Every ticket with an event received at or after `since` (epoch seconds), with the
        payloads of those events newest first (by the vendor's event time, then arrival; at most
        `per_ticket`) and its last note key: the snapshots `tierdesk plan` reads tickets from.
        Ignored events (known events tierdesk does not act on) are left out. One query, streamed
        `batch` rows at a time in (vendor, ticket) order, so memory holds one ticket's payloads."""
        query = (
            sa.select(events.c.vendor, events.c.ticket, events.c.payload,
                      tickets.c.last_note_key)
            .select_from(events.outerjoin(
                tickets, sa.and_(tickets.c.vendor == events.c.vendor,
                                 tickets.c.ticket == events.c.ticket)))
            .where(events.c.ticket.is_not(None), events.c.status != IGNORED,
                   events.c.received_at >= since)
            .order_by(events.c.vendor, events.c.ticket, events.c.occurred_at.desc().nulls_last(),
                      events.c.id.desc())
            .execution_options(yield_per=batch)
        )
        with self._read() as conn:
            current: tuple[str, str] | None = None
            note: str | None = None
            payloads: list[Mapping[str, Any]] = []
            for row in conn.execute(query):
                key = (str(row.vendor), str(row.ticket))
                if key != current:
                    if current is not None:
                        yield TicketPayloads(*current, note, tuple(payloads))
                    current, note, payloads = key, row.last_note_key, []
                if len(payloads) < per_ticket:
                    try:
                        payload = json.loads(row.payload)
                    except ValueError:
                        continue  # stored as received; a body that is not JSON shows nothing
                    if isinstance(payload, Mapping):
                        payloads.append(payload)
            if current is not None:
                yield TicketPayloads(*current, note, tuple(payloads))
