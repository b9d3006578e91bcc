"""Operators' upkeep of the inbox: replaying dead letters and pruning what is old and finished.

`Inbox` mixes this in (it supplies the transactions and the clock); `tierdesk replay`,
`tierdesk prune` and the service's retention loop (webhooks/retention.py) call it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from webhooks.inbox.records import Pruned
from webhooks.inbox.schema import (
    DEAD,
    DONE,
    IGNORED,
    PENDING,
    SLA_DUE_EVENT,
    decisions,
    events,
    sla_notices,
    tickets,
)


class InboxUpkeep:
    """The operators' methods of `Inbox` (a mixin)."""

    clock: Callable[[], float]

    if TYPE_CHECKING:
        def _tx(self) -> AbstractContextManager[Connection]: ...

        def _read(self) -> AbstractContextManager[Connection]: ...

    def replay(self, event_ids: Sequence[int] | None = None) -> int:
        """Make dead letters pending again with a fresh attempt count (all when `event_ids` is
        None); return how many. Their tickets become claimable at once."""
        now = self.clock()
        with self._tx() as conn:
            query = sa.select(events.c.id, events.c.vendor, events.c.ticket).where(
                events.c.status == DEAD
            )
            if event_ids is not None:
                query = query.where(events.c.id.in_(list(event_ids)))
            rows = conn.execute(query).all()
            if not rows:
                return 0
            conn.execute(
                events.update()
                .where(events.c.id.in_([r.id for r in rows]))
                .values(status=PENDING, attempts=0, finished_at=None)
                # claims stay: the replayed events' earlier writes may have landed.
            )
            for vendor, ticket in sorted({(r.vendor, r.ticket) for r in rows}):
                conn.execute(
                    tickets.update()
                    .where(tickets.c.vendor == vendor, tickets.c.ticket == ticket)
                    .values(pending=True, attempts=0, next_attempt_at=now, updated_at=now,
                            # A replayed SLA due event is claimed first, as when it was new.
                            sla_due=sa.or_(tickets.c.sla_due.is_(True), sa.select(events.c.id)
                                           .where(events.c.vendor == vendor,
                                                  events.c.ticket == ticket,
                                                  events.c.status == PENDING,
                                                  events.c.event_type == SLA_DUE_EVENT)
                                           .exists()))
                )
        return len(rows)

    def prune(
        self, *, older_than: float, batch: int = 2000, dry_run: bool = False
    ) -> Pruned:
        """Delete what is older than `older_than` (epoch seconds) and finished: events that
        were processed or ignored (by `received_at`), decision records (by `created_at`) and
        SLA notices sent or given up.
        Pending events and dead letters are never deleted, nor the per-ticket state (the
        checklist last posted, the newest event seen), so pruning changes no decision.

        Deletes in batches of `batch` rows, one short transaction each, so receivers and workers
        are never held up behind one long delete. `dry_run` only counts."""
        old_events = sa.and_(events.c.status.in_([DONE, IGNORED]),
                             events.c.received_at < older_than)
        old_decisions = decisions.c.created_at < older_than
        # SLA notices that are finished: sent, or given up (refused or out of attempts, kept
        # with next_attempt_at = +inf and the error). Their thresholds stay in sla_fired, so no
        # notice is queued again; the history marks and fired keys are kept (the clocks are
        # computed from them, and a ticket reopened after the horizon must not fire again).
        old_notices = sa.or_(
            sa.and_(sla_notices.c.sent_at.is_not(None), sla_notices.c.sent_at < older_than),
            sa.and_(sla_notices.c.sent_at.is_(None),
                    sla_notices.c.next_attempt_at == float("inf"),
                    sla_notices.c.created_at < older_than),
        )
        if dry_run:
            with self._read() as conn:
                return Pruned(
                    events=int(conn.execute(
                        sa.select(sa.func.count()).select_from(events).where(old_events)
                    ).scalar_one()),
                    decisions=int(conn.execute(
                        sa.select(sa.func.count()).select_from(decisions).where(old_decisions)
                    ).scalar_one()),
                    notices=int(conn.execute(
                        sa.select(sa.func.count()).select_from(sla_notices).where(old_notices)
                    ).scalar_one()),
                )
        counts = {"events": 0, "decisions": 0, "notices": 0}
        for name, table, where in (("events", events, old_events),
                                   ("decisions", decisions, old_decisions),
                                   ("notices", sla_notices, old_notices)):
            while True:
                with self._tx() as conn:
                    ids = conn.execute(
                        sa.select(table.c.id).where(where).order_by(table.c.id).limit(batch)
                    ).scalars().all()
                    if ids:
                        conn.execute(table.delete().where(table.c.id.in_(ids)))
                counts[name] += len(ids)
                if len(ids) < batch:
                    break
        return Pruned(events=counts["events"], decisions=counts["decisions"],
                      notices=counts["notices"])
