"""The inbox's tables (SQLAlchemy Core metadata) and the values stored in them.

    events          one row per delivery; unique (vendor, delivery_id) is the dedupe key.
                    status: pending -> done | dead; ignored (a known event tierdesk does not act
                    on) is final from the start.
    tickets         one row per (vendor, ticket): `pending` (has pending events), the lease
                    (`lease_token`, `lease_until`), backoff (`next_attempt_at`), `last_note_key`
                    (the checklist last posted) and `last_occurred_at` (newest event processed).
    decisions       every evaluation: policy digest, tier before/after, reasons, vendor calls.
    vendor_pauses   a vendor's rate limit is per account: no ticket of it is claimed until then.
    schema_version  the migration level (webhooks/inbox/migrations.py).
"""

from __future__ import annotations

import sqlalchemy as sa

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


UNFINISHED_ERROR = (
    "evaluation did not finish: claimed {claims} times without finishing (the process crashed"
    " or hung while deciding on this event); the ticket's other events went on"
)

