"""The inbox's versioned schema migrations, and the runner that applies them on connect."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from webhooks.inbox.database import InboxError
from webhooks.inbox.schema import (
    decisions,
    events,
    metadata,
    schema_version,
    sla_fired,
    sla_marks,
    sla_notices,
    sla_timers,
    tickets,
    vendor_pauses,
)


def _migration_1(conn: Connection) -> None:
    """The first schema: events, tickets, decisions, vendor pauses (as currently defined, so a
    new database gets the whole schema at once; later steps skip what already exists)."""
    metadata.create_all(conn, tables=[events, tickets, decisions, vendor_pauses])


def _migration_2(conn: Connection) -> None:
    """tickets.known_at, for detecting stale webhook snapshots."""
    columns = {c["name"] for c in sa.inspect(conn).get_columns("tierdesk_tickets")}
    if "known_at" not in columns:
        conn.execute(sa.text("ALTER TABLE tierdesk_tickets ADD COLUMN known_at BIGINT"))


def _migration_3(conn: Connection) -> None:
    """Indexes on events.received_at and decisions.created_at, for pruning by age."""
    for table, name in ((events, "ix_tierdesk_events_received"),
                        (decisions, "ix_tierdesk_decisions_created")):
        index = next(i for i in table.indexes if i.name == name)
        index.create(conn, checkfirst=True)


def _migration_4(conn: Connection) -> None:
    """An index on events (vendor, ticket, occurred_at), for finding replayed bodies."""
    index = next(i for i in events.indexes if i.name == "ix_tierdesk_events_occurred")
    index.create(conn, checkfirst=True)


def _migration_5(conn: Connection) -> None:
    """The SLA tables (issue 18): observed history marks, per-ticket timers, the fired
    thresholds and the outgoing-notice outbox."""
    metadata.create_all(conn, tables=[sla_marks, sla_timers, sla_fired, sla_notices],
                        checkfirst=True)


def _migration_6(conn: Connection) -> None:
    """An index on sla_timers (lease_until, due_at): "when is the next timer due" becomes an
    index seek instead of a scan of every timer (the timer loop asks it every poll)."""
    index = next(i for i in sla_timers.indexes if i.name == "ix_tierdesk_sla_timers_lease_due")
    index.create(conn, checkfirst=True)


def _migration_7(conn: Connection) -> None:
    """tickets.sla_due (due events are claimed first) and sla_timers.rearms / rearm_error (a
    timer re-armed after its ticket's due event became a dead letter), with the claim's index."""
    columns = {c["name"] for c in sa.inspect(conn).get_columns("tierdesk_tickets")}
    if "sla_due" not in columns:
        conn.execute(sa.text("ALTER TABLE tierdesk_tickets ADD COLUMN sla_due BOOLEAN"
                             " NOT NULL DEFAULT FALSE"))
    timer_columns = {c["name"] for c in sa.inspect(conn).get_columns("tierdesk_sla_timers")}
    if "rearms" not in timer_columns:
        conn.execute(sa.text("ALTER TABLE tierdesk_sla_timers ADD COLUMN rearms INTEGER"
                             " NOT NULL DEFAULT 0"))
    if "rearm_error" not in timer_columns:
        conn.execute(sa.text("ALTER TABLE tierdesk_sla_timers ADD COLUMN rearm_error TEXT"))
    index = next(i for i in tickets.indexes if i.name == "ix_tierdesk_tickets_sla_due")
    index.create(conn, checkfirst=True)
    # Tickets already holding a due event (stored by a tierdesk before this one) go first too.
    conn.execute(sa.text(
        "UPDATE tierdesk_tickets SET sla_due = TRUE WHERE pending = TRUE AND EXISTS (SELECT 1"
        " FROM tierdesk_events e WHERE e.vendor = tierdesk_tickets.vendor AND e.ticket ="
        " tierdesk_tickets.ticket AND e.status = 'pending' AND e.event_type = 'tierdesk:sla-due')"))


#: Versioned migrations, applied in order on connect. Never edit a released one: append.
MIGRATIONS: tuple[tuple[int, Callable[[Connection], None]], ...] = (
    (1, _migration_1),
    (2, _migration_2),
    (3, _migration_3),
    (4, _migration_4),
    (5, _migration_5),
    (6, _migration_6),
    (7, _migration_7),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]


def migrate(conn: Connection) -> int:
    """Apply pending migrations in `conn`'s transaction; return the schema version. Safe with
    several replicas."""
    if conn.dialect.name == "postgresql":
        # Replicas starting together migrate one at a time.
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(7261143)"))
    schema_version.create(conn, checkfirst=True)
    current = conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar()
    current = int(current or 0)
    if current > SCHEMA_VERSION:
        raise InboxError(
            f"the inbox database has schema version {current}, newer than this tierdesk"
            f" ({SCHEMA_VERSION}): upgrade tierdesk"
        )
    for version, step in MIGRATIONS:
        if version > current:
            step(conn)
            if current == 0:
                conn.execute(schema_version.insert().values(version=version))
            else:
                conn.execute(schema_version.update().values(version=version))
            current = version
    return current
