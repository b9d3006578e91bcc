"""The durable inbox: webhook events, per-ticket leases, retries, dead letters and decision records.

One schema on SQLite (WAL, the single-host default) and PostgreSQL (several replicas), written
with SQLAlchemy Core. State that must survive a restart lives here, never in process memory.

Tables:

    events          one row per delivery; unique (vendor, delivery_id) is the dedupe key.
                    status: pending -> done | dead; ignored (a known event tierdesk does not act
                    on) is final from the start.
    tickets         one row per (vendor, ticket): `pending` (has pending events), the lease
                    (`lease_token`, `lease_until`), backoff (`next_attempt_at`), `last_note_key`
                    (the checklist last posted) and `last_occurred_at` (newest event processed).
    decisions       every evaluation: policy digest, tier before/after, reasons, vendor calls.
    vendor_pauses   a vendor's rate limit is per account: no ticket of it is claimed until then.
    schema_version  the migration level (migrations below run on connect, in order, once).

Claiming is one UPDATE ... WHERE id = (SELECT ... LIMIT 1 [FOR UPDATE SKIP LOCKED]) RETURNING:
atomic on SQLite (one writer at a time, BEGIN IMMEDIATE) and on PostgreSQL (row locks), so two
workers never hold one ticket. A claim carries a random token; completing or retrying a claim
whose lease has expired and been taken over does not clobber the new holder's lease.
"""

from __future__ import annotations

import functools
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection, Engine

from connectors.base import Envelope

Clock = Callable[[], float]
#: One delivery for `Inbox.enqueue_many`: its envelope, the parsed body, and the raw bytes as
#: received (None for a body that must be stored re-encoded from `payload`).
Delivery = tuple[Envelope, Mapping[str, Any], bytes | None]

# Event statuses.
#: The longest ticket key and delivery id the inbox stores (the columns are VARCHAR(255)).
MAX_KEY_LENGTH = 255

PENDING = "pending"
DONE = "done"
IGNORED = "ignored"
DEAD = "dead"

metadata = sa.MetaData()

schema_version = sa.Table(
    "tierdesk_schema_version",
    metadata,
    sa.Column("version", sa.Integer, nullable=False),
)

events = sa.Table(
    "tierdesk_events",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("vendor", sa.String(16), nullable=False),
    sa.Column("delivery_id", sa.String(255), nullable=False),
    sa.Column("event_type", sa.String(128), nullable=False),
    sa.Column("ticket", sa.String(255)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("actor", sa.String(255)),
    sa.Column("occurred_at", sa.BigInteger),
    sa.Column("received_at", sa.Float, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    #: Failed attempts (counted towards max_attempts).
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    #: Times a worker claimed the event: above 1 means an earlier holder failed or crashed,
    #: perhaps after its write reached the vendor, so the next one reads fresh state first.
    sa.Column("claims", sa.Integer, nullable=False, default=0),
    sa.Column("last_error", sa.Text),
    sa.Column("finished_at", sa.Float),
    sa.UniqueConstraint("vendor", "delivery_id", name="uq_tierdesk_events_delivery"),
    sa.Index("ix_tierdesk_events_ticket", "vendor", "ticket", "status"),
    sa.Index("ix_tierdesk_events_status", "status"),
    #: A ticket's events by event time: finds a replayed body in one seek (enqueue_many).
    sa.Index("ix_tierdesk_events_occurred", "vendor", "ticket", "occurred_at"),
    sa.Index("ix_tierdesk_events_received", "received_at"),
)

tickets = sa.Table(
    "tierdesk_tickets",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("vendor", sa.String(16), nullable=False),
    sa.Column("ticket", sa.String(255), nullable=False),
    sa.Column("pending", sa.Boolean, nullable=False, default=False),
    sa.Column("lease_token", sa.String(64)),
    sa.Column("lease_until", sa.Float),
    sa.Column("next_attempt_at", sa.Float, nullable=False, default=0.0),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("last_note_key", sa.String(128)),
    sa.Column("last_occurred_at", sa.BigInteger),
    sa.Column("last_error", sa.Text),
    sa.Column("updated_at", sa.Float, nullable=False, default=0.0),
    #: Epoch ms (tierdesk's clock) as of which tierdesk knows the ticket's state: the end of its
    #: last write, or the start of its last fresh read. An event that happened before this
    #: carries a stale snapshot, so the worker reads fresh instead of deciding on it.
    sa.Column("known_at", sa.BigInteger),
    sa.UniqueConstraint("vendor", "ticket", name="uq_tierdesk_tickets_ticket"),
    sa.Index("ix_tierdesk_tickets_ready", "pending", "next_attempt_at"),
)

decisions = sa.Table(
    "tierdesk_decisions",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("vendor", sa.String(16), nullable=False),
    sa.Column("ticket", sa.String(255), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("policy_digest", sa.String(64)),
    sa.Column("tier_before", sa.String(64)),
    sa.Column("tier_after", sa.String(64)),
    #: applied | unchanged | own-event | loop-halted | retry | dead
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("reasons", sa.Text, nullable=False),
    sa.Column("calls", sa.Text, nullable=False),
    sa.Column("decision", sa.Text),
    sa.Column("event_ids", sa.Text, nullable=False),
    sa.Column("error", sa.Text),
    sa.Index("ix_tierdesk_decisions_ticket", "vendor", "ticket", "id"),
    sa.Index("ix_tierdesk_decisions_created", "created_at"),
)

#: The start of a pause reason recorded when a vendor refuses tierdesk's credentials (401):
#: /readyz lists such pauses.
CREDENTIALS_PAUSE_PREFIX = "credentials rejected"

vendor_pauses = sa.Table(
    "tierdesk_vendor_pauses",
    metadata,
    sa.Column("vendor", sa.String(16), primary_key=True),
    sa.Column("until", sa.Float, nullable=False),
    sa.Column("reason", sa.Text),
)


_EVENT_COLUMNS = (
    "vendor", "delivery_id", "event_type", "ticket", "status", "actor", "occurred_at",
    "received_at", "payload", "attempts", "claims", "finished_at", "last_error",
)
#: Rows per multi-row insert: 64 x 13 parameters stays under SQLite's oldest limit (999).
_SQLITE_ROWS_PER_INSERT = 64


@functools.lru_cache(maxsize=_SQLITE_ROWS_PER_INSERT)
def _sqlite_event_insert(rows: int) -> str:
    """`rows` events in one statement; the new ones come back (RETURNING, SQLite 3.35+)."""
    one = f"({', '.join('?' * len(_EVENT_COLUMNS))})"
    return (
        f"INSERT INTO tierdesk_events ({', '.join(_EVENT_COLUMNS)})"
        f" VALUES {', '.join([one] * rows)}"
        " ON CONFLICT (vendor, delivery_id) DO NOTHING RETURNING vendor, delivery_id"
    )
_SQLITE_TICKET_UPSERT = (
    "INSERT INTO tierdesk_tickets (vendor, ticket, pending, next_attempt_at, attempts,"
    " updated_at) VALUES (?, ?, 1, ?, 0, ?)"
    " ON CONFLICT (vendor, ticket) DO UPDATE SET pending = 1, updated_at = excluded.updated_at"
)

#: One stored event with exactly this body for a ticket and event time (a replay), through
#: ix_tierdesk_events_occurred.
_SQLITE_REPLAY_LOOKUP = (
    "SELECT 1 FROM tierdesk_events WHERE vendor = ? AND ticket = ? AND occurred_at = ?"
    " AND payload = ? LIMIT 1"
)
_REPLAY_LOOKUP = sa.text(
    "SELECT 1 FROM tierdesk_events WHERE vendor = :vendor AND ticket = :ticket"
    " AND occurred_at = :occurred_at AND payload = :payload LIMIT 1"
)

# --------------------------------------------------------------------------- migrations


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


#: Versioned migrations, applied in order on connect. Never edit a released one: append.
MIGRATIONS: tuple[tuple[int, Callable[[Connection], None]], ...] = (
    (1, _migration_1),
    (2, _migration_2),
    (3, _migration_3),
    (4, _migration_4),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]


def stored_json(payload: Mapping[str, Any], raw: bytes | None) -> bytes:
    """The bytes the inbox keeps for a delivery: `raw` as received when it is UTF-8 (the usual
    case: no re-encoding), else `payload` as UTF-8 JSON (a body in UTF-16/32, or a salvaged
    partial one)."""
    if raw is not None:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            return raw
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class InboxError(RuntimeError):
    """The inbox database cannot be used (bad URL, unreachable, newer schema)."""


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One stored delivery."""

    id: int
    vendor: str
    delivery_id: str
    event_type: str
    ticket: str | None
    status: str
    actor: str | None
    occurred_at: int | None
    received_at: float
    attempts: int
    last_error: str | None
    payload_text: str
    claims: int = 0

    @property
    def payload(self) -> dict[str, Any]:
        value = json.loads(self.payload_text)
        return value if isinstance(value, dict) else {"_": value}

    def envelope(self) -> Envelope:
        """The envelope the receiver stored, rebuilt (for `Connector.is_own_event`)."""
        return Envelope(
            vendor=self.vendor,
            event_type=self.event_type,
            handled=self.status != IGNORED,
            ticket=self.ticket,
            delivery_id=self.delivery_id,
            actor=self.actor,
            occurred_at=self.occurred_at,
        )


@dataclass(frozen=True, slots=True)
class Claim:
    """A worker's lease on one ticket and the pending events it covers (arrival order)."""

    ticket_row: int
    vendor: str
    ticket: str
    token: str
    lease_until: float
    events: tuple[StoredEvent, ...]
    last_note_key: str | None
    last_occurred_at: int | None
    attempts: int
    #: See tickets.known_at.
    known_at: int | None = None
    #: Events this claim dead-lettered instead of handing out: claimed `max_unfinished` times
    #: without an evaluation finishing (see `Inbox.claim`). `events` may then be empty.
    dead_on_claim: tuple[int, ...] = ()


#: The dead letter's error of an event whose evaluations never finish (a crash or a hang).
UNFINISHED_ERROR = (
    "evaluation did not finish: claimed {claims} times without finishing (the process crashed"
    " or hung while deciding on this event); the ticket's other events went on"
)


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """What one evaluation of a ticket decided and did."""

    vendor: str
    ticket: str
    outcome: str
    event_ids: tuple[int, ...]
    policy_digest: str | None = None
    tier_before: str | None = None
    tier_after: str | None = None
    reasons: tuple[str, ...] = ()
    calls: tuple[Mapping[str, Any], ...] = ()
    decision: Mapping[str, Any] | None = None
    error: str | None = None
    created_at: float = 0.0
    id: int | None = None


@dataclass(frozen=True, slots=True)
class Depth:
    """How much work the inbox holds."""

    pending_events: int
    ready_tickets: int
    dead_letters: int
    by_vendor: Mapping[str, int] = field(default_factory=dict)
    #: Seconds since the oldest pending event of each vendor was received.
    oldest_pending_age: Mapping[str, float] = field(default_factory=dict)
    #: Seconds each vendor stays paused (Retry-After); only vendors paused now.
    paused_for: Mapping[str, float] = field(default_factory=dict)


# --------------------------------------------------------------------------- engine set-up


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


def _make_engine(url: str) -> Engine:
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


# --------------------------------------------------------------------------- the inbox


class Inbox:
    """The durable inbox over one database. Thread-safe: every method runs its own transaction."""

    def __init__(self, engine: Engine, *, clock: Clock = time.time) -> None:
        self.engine = engine
        self.clock = clock
        self.dialect = engine.dialect.name
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
        engine = _make_engine(url)
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

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            conn.execution_options(tierdesk_read=True)
            yield conn
            conn.rollback()

    def migrate(self) -> int:
        """Apply pending migrations; return the schema version. Safe with several replicas."""
        with self._tx() as conn:
            if self.dialect == "postgresql":
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

    def ping(self) -> None:
        """Raise if the database cannot be reached (for /readyz)."""
        with self._read() as conn:
            conn.execute(sa.select(sa.literal(1)))

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
            row = self._event_row(envelope, payload, raw, now)
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
            rows = self._without_replays(conn, rows)
            if not rows:
                new: set[tuple[str, str]] = set()
            elif self.dialect == "sqlite":
                new = self._insert_events_sqlite(conn, rows)
            else:
                new = {(r.vendor, r.delivery_id) for r in conn.execute(insert, rows).all()}
            touched = sorted({
                (row["vendor"], row["ticket"])
                for row in rows
                if row["status"] == PENDING and (row["vendor"], row["delivery_id"]) in new
            })
            if touched and self.dialect == "sqlite":
                conn.exec_driver_sql(_SQLITE_TICKET_UPSERT, [(v, t, now, now) for v, t in touched])
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

    def _without_replays(
        self, conn: Connection, rows: list[dict[str, Any]]
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
            if self.dialect == "sqlite":
                found = conn.exec_driver_sql(_SQLITE_REPLAY_LOOKUP, key).first()
            else:
                found = conn.execute(_REPLAY_LOOKUP, {
                    "vendor": key[0], "ticket": key[1], "occurred_at": key[2],
                    "payload": key[3]}).first()
            if found is None:
                kept.append(row)
        return kept

    @staticmethod
    def _insert_events_sqlite(
        conn: Connection, rows: Sequence[Mapping[str, Any]]
    ) -> set[tuple[str, str]]:
        """The receiver's hot path on SQLite, at the driver level (the group-commit writer's
        Python time is time the event loop waits for the GIL): one multi-row
        `INSERT ... ON CONFLICT DO NOTHING RETURNING` per 64 rows both stores the new
        deliveries and names them, so a group costs the writer a handful of statements."""
        new: set[tuple[str, str]] = set()
        for start in range(0, len(rows), _SQLITE_ROWS_PER_INSERT):
            part = rows[start : start + _SQLITE_ROWS_PER_INSERT]
            params = [row[c] for row in part for c in _EVENT_COLUMNS]
            found = conn.exec_driver_sql(_sqlite_event_insert(len(part)), tuple(params)).all()
            new.update((r[0], r[1]) for r in found)
        return new

    @staticmethod
    def _event_row(
        envelope: Envelope, payload: Mapping[str, Any], raw: bytes | None, now: float
    ) -> dict[str, Any]:
        if envelope.handled and not envelope.ticket:
            raise ValueError("a handled event needs a ticket")
        text = stored_json(payload, raw).decode("utf-8")
        return {
            "vendor": envelope.vendor,
            "delivery_id": envelope.delivery_id[:255],
            "event_type": envelope.event_type[:128],
            "ticket": envelope.ticket,
            "status": PENDING if envelope.handled else IGNORED,
            "actor": envelope.actor[:255] if envelope.actor else None,
            "occurred_at": envelope.occurred_at,
            "received_at": now,
            "payload": text,
            "attempts": 0,
            "claims": 0,
            "finished_at": None if envelope.handled else now,
            "last_error": None,
        }

    # ------------------------------------------------------------------ working

    def claim(
        self,
        *,
        lease_seconds: float,
        vendors: Sequence[str] | None = None,
        max_events: int = 200,
        max_unfinished: int | None = None,
    ) -> Claim | None:
        """Lease the ticket that has waited longest among those with pending events, whose
        backoff has passed and whose vendor is not paused; None when there is none.

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
        free = sa.and_(
            tickets.c.pending.is_(True),
            sa.or_(tickets.c.lease_until.is_(None), tickets.c.lease_until < now),
        )
        paused = sa.select(vendor_pauses.c.vendor).where(vendor_pauses.c.until > now)
        pick = (
            sa.select(tickets.c.id)
            .where(free, tickets.c.next_attempt_at <= now, tickets.c.vendor.not_in(paused))
            .order_by(tickets.c.next_attempt_at, tickets.c.id)
            .limit(1)
        )
        if vendors is not None:
            pick = pick.where(tickets.c.vendor.in_(list(vendors)))
        if self.dialect == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        stmt = (
            tickets.update()
            .where(tickets.c.id == pick.scalar_subquery(), free)
            .values(lease_token=token, lease_until=until, updated_at=now)
            .returning(
                tickets.c.id, tickets.c.vendor, tickets.c.ticket, tickets.c.last_note_key,
                tickets.c.last_occurred_at, tickets.c.attempts, tickets.c.known_at,
            )
        )
        with self._tx() as conn:
            row = conn.execute(stmt).first()
            if row is None:
                return None
            found = conn.execute(
                sa.select(events)
                .where(
                    events.c.vendor == row.vendor,
                    events.c.ticket == row.ticket,
                    events.c.status == PENDING,
                )
                .order_by(events.c.id)
                .limit(max_events)
            ).all()
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
                found = [r for r in found if r.id not in poisoned]
                suspect = min(2, max(1, max_unfinished - 1))
                if any(r.claims - r.attempts >= suspect for r in found):
                    found = found[:1]  # one at a time until the poison pill is found
            if found:
                conn.execute(
                    events.update()
                    .where(events.c.id.in_([r.id for r in found]))
                    .values(claims=events.c.claims + 1)
                )
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
                return Claim(ticket_row=row.id, vendor=row.vendor, ticket=row.ticket,
                             token=token, lease_until=now, events=(),
                             last_note_key=row.last_note_key,
                             last_occurred_at=row.last_occurred_at, attempts=row.attempts,
                             known_at=row.known_at, dead_on_claim=tuple(poisoned))
            if not found:
                # Nothing left (replayed elsewhere, or a stale flag): clear the flag and lease.
                conn.execute(
                    tickets.update()
                    .where(tickets.c.id == row.id, tickets.c.lease_token == token)
                    .values(pending=False, lease_token=None, lease_until=None)
                )
                return None
        return Claim(
            ticket_row=row.id,
            vendor=row.vendor,
            ticket=row.ticket,
            token=token,
            lease_until=until,
            events=tuple(replace(_event(r), claims=r.claims + 1) for r in found),
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
    ) -> bool:
        """Mark the claim's events done, remember the note posted, the newest event time and
        `known_at` (see tickets.known_at), record the decision and release the lease. False if
        the lease had been lost (the events are still marked done: their work was done)."""
        now = self.clock()
        ids = [e.id for e in claim.events]
        newest = max((e.occurred_at for e in claim.events if e.occurred_at is not None),
                     default=None)
        with self._tx() as conn:
            conn.execute(
                events.update()
                .where(events.c.id.in_(ids), events.c.status == PENDING)
                .values(status=DONE, finished_at=now, last_error=None)
            )
            if record is not None:
                self._record(conn, record, now)
            values: dict[str, Any] = {"updated_at": now, "attempts": 0, "last_error": None}
            if note_key is not None:
                values["last_note_key"] = note_key
            if known_at is not None:
                values["known_at"] = sa.case(
                    (tickets.c.known_at.is_(None), known_at),
                    (tickets.c.known_at < known_at, known_at),
                    else_=tickets.c.known_at,
                )
            if newest is not None:
                values["last_occurred_at"] = sa.case(
                    (tickets.c.last_occurred_at.is_(None), newest),
                    (tickets.c.last_occurred_at < newest, newest),
                    else_=tickets.c.last_occurred_at,
                )
            conn.execute(tickets.update().where(tickets.c.id == claim.ticket_row).values(values))
            return self._release(conn, claim, now, next_attempt_at=now)

    def retry(
        self,
        claim: Claim,
        *,
        error: str,
        delay: float,
        max_attempts: int,
        record: DecisionRecord | None = None,
    ) -> list[int]:
        """Count a failed attempt on the claim's events and try again after `delay` seconds.
        Events that reach `max_attempts` become dead letters; their ids are returned."""
        now = self.clock()
        ids = [e.id for e in claim.events]
        dead = [e.id for e in claim.events if e.attempts + 1 >= max_attempts]
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
            self._release(conn, claim, now, next_attempt_at=now + max(0.0, delay))
        return dead

    def dead_letter(
        self, claim: Claim, *, error: str, record: DecisionRecord | None = None
    ) -> None:
        """Give up on the claim's events now (the vendor refused: retrying cannot help)."""
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
            self._release(conn, claim, now, next_attempt_at=now)

    def dead_letter_events(self, claim: Claim, event_ids: Sequence[int], *, error: str) -> Claim:
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
        return replace(claim, events=tuple(e for e in claim.events if e.id not in ids))

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
        still_pending = (
            sa.select(events.c.id)
            .where(
                events.c.vendor == claim.vendor,
                events.c.ticket == claim.ticket,
                events.c.status == PENDING,
            )
            .exists()
        )
        values: dict[str, Any] = {
            "lease_token": None,
            "lease_until": None,
            "pending": still_pending,
        }
        if next_attempt_at is not None:
            values["next_attempt_at"] = next_attempt_at
        result = conn.execute(
            tickets.update()
            .where(tickets.c.id == claim.ticket_row, tickets.c.lease_token == claim.token)
            .values(values)
        )
        if result.rowcount == 1:
            return True
        # The lease expired and another worker holds the ticket now: leave its lease alone but
        # keep the pending flag true if events remain (the holder recomputes it anyway).
        conn.execute(
            tickets.update()
            .where(tickets.c.id == claim.ticket_row, still_pending)
            .values(pending=True)
        )
        return False

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

    def _record(self, conn: Connection, record: DecisionRecord, now: float) -> None:
        conn.execute(
            decisions.insert().values(
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

    # ------------------------------------------------------------------ operators

    def event(self, event_id: int) -> StoredEvent | None:
        with self._read() as conn:
            row = conn.execute(sa.select(events).where(events.c.id == event_id)).first()
        return _event(row) if row is not None else None

    def events_of(self, vendor: str, ticket: str) -> list[StoredEvent]:
        """Every stored event of one ticket, oldest first."""
        with self._read() as conn:
            rows = conn.execute(
                sa.select(events)
                .where(events.c.vendor == vendor, events.c.ticket == ticket)
                .order_by(events.c.id)
            ).all()
        return [_event(r) for r in rows]

    def dead_letters(self, *, limit: int = 100) -> list[StoredEvent]:
        """Dead letters, newest first."""
        with self._read() as conn:
            rows = conn.execute(
                sa.select(events).where(events.c.status == DEAD).order_by(events.c.id.desc())
                .limit(limit)
            ).all()
        return [_event(r) for r in rows]

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
                    .values(pending=True, attempts=0, next_attempt_at=now, updated_at=now)
                )
        return len(rows)

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

    def prune(
        self, *, older_than: float, batch: int = 2000, dry_run: bool = False
    ) -> Pruned:
        """Delete what is older than `older_than` (epoch seconds) and finished: events that
        were processed or ignored (by `received_at`) and decision records (by `created_at`).
        Pending events and dead letters are never deleted, nor the per-ticket state (the
        checklist last posted, the newest event seen), so pruning changes no decision.

        Deletes in batches of `batch` rows, one short transaction each, so receivers and workers
        are never held up behind one long delete. `dry_run` only counts."""
        old_events = sa.and_(events.c.status.in_([DONE, IGNORED]),
                             events.c.received_at < older_than)
        old_decisions = decisions.c.created_at < older_than
        if dry_run:
            with self._read() as conn:
                return Pruned(
                    events=int(conn.execute(
                        sa.select(sa.func.count()).select_from(events).where(old_events)
                    ).scalar_one()),
                    decisions=int(conn.execute(
                        sa.select(sa.func.count()).select_from(decisions).where(old_decisions)
                    ).scalar_one()),
                )
        counts = {"events": 0, "decisions": 0}
        for name, table, where in (("events", events, old_events),
                                   ("decisions", decisions, old_decisions)):
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
        return Pruned(events=counts["events"], decisions=counts["decisions"])

    def counts(self) -> dict[str, int]:
        """Number of events per status."""
        with self._read() as conn:
            return {
                str(s): int(n)
                for s, n in conn.execute(
                    sa.select(events.c.status, sa.func.count()).group_by(events.c.status)
                ).all()
            }


@dataclass(frozen=True)
class Pruned:
    """What `Inbox.prune` deleted (or, with `dry_run`, would delete)."""

    events: int
    decisions: int


def _event(row: Any) -> StoredEvent:
    return StoredEvent(
        id=row.id,
        vendor=row.vendor,
        delivery_id=row.delivery_id,
        event_type=row.event_type,
        ticket=row.ticket,
        status=row.status,
        actor=row.actor,
        occurred_at=row.occurred_at,
        received_at=row.received_at,
        attempts=row.attempts,
        last_error=row.last_error,
        payload_text=row.payload,
        claims=row.claims,
    )
