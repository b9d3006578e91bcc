"""The inbox's database set-up: URLs, the engines (SQLite pragmas), the SQLite fast insert and
the receiver's replayed-body filter."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine


class InboxError(RuntimeError):
    """The inbox database cannot be used (bad URL, unreachable, newer schema)."""



def normalize_url(url: str) -> str:
    """Use psycopg 3 for `postgresql://` URLs (SQLAlchemy would otherwise pick psycopg2)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _sqlite_engine(url: str) -> Engine:
    engine = sa.create_engine(url, connect_args={"timeout": 30.0, "check_same_thread": False})

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control from pysqlite so that every transaction starts with
        # BEGIN IMMEDIATE (below): a read that later writes would otherwise fail with
        # SQLITE_BUSY instead of waiting, when another process (a split worker) writes too.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on disk before the receiver answers 202 (NORMAL would survive a
        # process kill but not a power loss).
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Reads (Inbox._read) take no write lock, so /readyz and /metrics never queue behind
        # the receiver's commits.
        read_only = conn.get_execution_options().get("tierdesk_read", False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def make_engine(url: str) -> Engine:
    """The engine for a TIERDESK_DATABASE_URL (a SQLite file or PostgreSQL); else InboxError."""
    url = normalize_url(url)
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise InboxError(
            f"TIERDESK_DATABASE_URL is not a database URL ({exc}); expected"
            " sqlite:///path/to/tierdesk.db or postgresql://user@host/db"
        ) from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise InboxError(
                "an in-memory SQLite inbox would lose every event on restart: give a file,"
                " e.g. sqlite:///./tierdesk.db"
            )
        return _sqlite_engine(url)
    if parsed.get_backend_name() == "postgresql":
        return sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)
    raise InboxError(
        f"unsupported database {parsed.get_backend_name()!r} in TIERDESK_DATABASE_URL:"
        " use sqlite:///... or postgresql://..."
    )




# --------------------------------------------------------------------------- SQLite fast path

EVENT_COLUMNS = (
    "vendor", "delivery_id", "event_type", "ticket", "status", "actor", "occurred_at",
    "received_at", "payload", "attempts", "claims", "finished_at", "last_error",
)
#: Rows per multi-row insert: 64 x 13 parameters stays under SQLite's oldest limit (999).
SQLITE_ROWS_PER_INSERT = 64


@functools.lru_cache(maxsize=SQLITE_ROWS_PER_INSERT)
def sqlite_event_insert(rows: int) -> str:
    """`rows` events in one statement; the new ones come back (RETURNING, SQLite 3.35+)."""
    one = f"({', '.join('?' * len(EVENT_COLUMNS))})"
    return (
        f"INSERT INTO tierdesk_events ({', '.join(EVENT_COLUMNS)})"
        f" VALUES {', '.join([one] * rows)}"
        " ON CONFLICT (vendor, delivery_id) DO NOTHING RETURNING vendor, delivery_id"
    )
SQLITE_TICKET_UPSERT = (
    "INSERT INTO tierdesk_tickets (vendor, ticket, pending, next_attempt_at, attempts,"
    " updated_at) VALUES (?, ?, 1, ?, 0, ?)"
    " ON CONFLICT (vendor, ticket) DO UPDATE SET pending = 1, updated_at = excluded.updated_at"
)

#: One stored event with exactly this body for a ticket and event time (a replay), through
#: ix_tierdesk_events_occurred.
SQLITE_REPLAY_LOOKUP = (
    "SELECT 1 FROM tierdesk_events WHERE vendor = ? AND ticket = ? AND occurred_at = ?"
    " AND payload = ? LIMIT 1"
)
REPLAY_LOOKUP = sa.text(
    "SELECT 1 FROM tierdesk_events WHERE vendor = :vendor AND ticket = :ticket"
    " AND occurred_at = :occurred_at AND payload = :payload LIMIT 1"
)

# --------------------------------------------------------------------------- migrations


def sqlite_insert_events(
    conn: Connection, rows: Sequence[Mapping[str, Any]]
) -> set[tuple[str, str]]:
    """The receiver's hot path on SQLite, at the driver level (the group-commit writer's
    Python time is time the event loop waits for the GIL): one multi-row
    `INSERT ... ON CONFLICT DO NOTHING RETURNING` per 64 rows both stores the new
    deliveries and names them, so a group costs the writer a handful of statements."""
    new: set[tuple[str, str]] = set()
    for start in range(0, len(rows), SQLITE_ROWS_PER_INSERT):
        part = rows[start : start + SQLITE_ROWS_PER_INSERT]
        params = [row[c] for row in part for c in EVENT_COLUMNS]
        found = conn.exec_driver_sql(sqlite_event_insert(len(part)), tuple(params)).all()
        new.update((r[0], r[1]) for r in found)
    return new


def without_replays(
    conn: Connection, dialect: str, rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """`rows` without deliveries whose body is byte for byte one already stored for the same
    ticket and event time: a captured signed body replayed under a fresh delivery header.

    Jira signs the body but not `X-Atlassian-Webhook-Identifier`, and Zendesk signs the
    timestamp and body but not the invocation id, so the dedupe key alone lets a replay in
    (issue 14). The receiver refuses bodies older than the replay horizon; within it, this
    keeps one copy. One indexed lookup per row that names a ticket and an event time."""
    kept: list[dict[str, Any]] = []
    bodies: set[tuple[str, str, int, str]] = set()
    for row in rows:
        if row["ticket"] is None or row["occurred_at"] is None:
            kept.append(row)
            continue
        key = (row["vendor"], row["ticket"], row["occurred_at"], row["payload"])
        if key in bodies:
            continue
        bodies.add(key)
        # Plain SQL, compiled once: building a select per row cost ~0.5 ms of Python.
        if dialect == "sqlite":
            found = conn.exec_driver_sql(SQLITE_REPLAY_LOOKUP, key).first()
        else:
            found = conn.execute(REPLAY_LOOKUP, {
                "vendor": key[0], "ticket": key[1], "occurred_at": key[2],
                "payload": key[3]}).first()
        if found is None:
            kept.append(row)
    return kept
